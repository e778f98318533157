"""The project's ``.env``: the overrides ``make run`` reads, read by ``relearn`` too.

``make`` includes ``.env`` and exports its variables (ports, external server URLs), so a
``relearn`` command typed by hand in the same directory must read it as well, or it would look
for the stack on the default ports. Variables already in the environment win, as they do for
``make``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import MutableMapping

ENV_FILE = Path(".env")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUOTES = ('"', "'")


def _unquoted(value: str) -> str:
    """docker compose, which reads the same file, drops one pair of surrounding quotes."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in _QUOTES:
        return value[1:-1]
    return value


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """``NAME=value`` lines of ``path`` (``#`` comments, blank lines and ``export`` allowed)."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, equals, value = text.removeprefix("export ").partition("=")
        name = name.strip()
        if not equals or not _NAME.fullmatch(name):
            raise ValueError(
                f"{path} line {number}: expected NAME=value, as in .env.example (got {text!r})"
            )
        values[name] = _unquoted(value.strip())
    return values


def apply_env_file(path: Path = ENV_FILE, environ: MutableMapping[str, str] | None = None) -> None:
    """Set the variables of ``path`` that the environment does not set already."""
    target = os.environ if environ is None else environ
    for name, value in read_env_file(path).items():
        target.setdefault(name, value)
