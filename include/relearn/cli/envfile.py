"""The project's ``.env``: the overrides ``make run`` reads, read by ``relearn`` too.

``make`` includes ``.env`` and exports its variables (ports, external server URLs), so a
``relearn`` command typed by hand in the same directory must read it as well, or it would look
for the stack on the default ports. Here a variable already in the environment wins (under
``make`` the environment already holds the file's values). ``RELEARN_ENV_FILE`` names another
file, which must exist; empty, none is read (the test suite's commands must never reach a
developer's servers).

The file is read as ``make`` reads it, so that both see the same values: ``NAME=value`` lines,
``#`` comments, quotes kept as part of the value (write values without them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import MutableMapping

ENV_FILE_VARIABLE = "RELEARN_ENV_FILE"
DEFAULT_ENV_FILE = ".env"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _value(raw: str) -> str:
    """The value as ``make`` sees it: up to a comment, without surrounding blanks."""
    return raw.split("#", 1)[0].strip()


def read_env_file(path: Path, *, required: bool = False) -> dict[str, str]:
    """``NAME=value`` lines of ``path`` (``#`` comments, blank lines and ``export`` allowed);
    none when it does not exist, unless ``required``.

    :raises ValueError: the file cannot be read (or is missing and required), or a line is
        not ``NAME=value``.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        if required:
            raise ValueError(
                f"{ENV_FILE_VARIABLE}={path} does not exist: name an existing file, or set it "
                "empty to read none"
            ) from None
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot be read as UTF-8 text ({error})") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, equals, raw = stripped.removeprefix("export ").partition("=")
        name, value = name.strip(), _value(raw)
        if not equals or not _NAME.fullmatch(name):
            raise ValueError(
                f"{path} line {number}: expected NAME=value, as in .env.example (got {stripped!r})"
            )
        values[name] = value  # quotes kept, as make keeps them: both see the same value
    return values


def apply_env_file(environ: MutableMapping[str, str] | None = None) -> None:
    """Set the variables of the project's ``.env`` that the environment does not set."""
    target = os.environ if environ is None else environ
    path = target.get(ENV_FILE_VARIABLE, DEFAULT_ENV_FILE)
    if not path:
        return
    # A file named on purpose must exist: a typo would silently fall back to the default ports.
    required = ENV_FILE_VARIABLE in target
    for name, value in read_env_file(Path(path), required=required).items():
        target.setdefault(name, value)
