"""A draft model entry as YAML, and adding it to the user's configuration file.

The file is edited as text, not re-dumped, so the user's comments and layout survive: the
entry goes at the end of the ``models:`` list. The result is validated (``parse_config``)
before the file is replaced, so a failed ``--write`` leaves the file as it was.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from relearn.config import ConfigError, load_config, parse_config

_TOP_LEVEL_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")
_LIST_ITEM = re.compile(r"^(\s*)- ")
_DEFAULT_INDENT = "  "


def render(entry: dict[str, Any], skipped: dict[str, str] | None = None, indent: str = "") -> str:
    """The entry as one YAML list item (features one per line), with skipped columns noted."""
    lines = []
    for column, reason in (skipped or {}).items():
        lines.append(f"# not a feature: {column}: {reason}")
    first = True
    for key, value in entry.items():
        prefix = "- " if first else "  "
        first = False
        if key == "features":
            lines.append(f"{prefix}features:")
            lines.extend(f"    - {_flow(feature)}" for feature in value)
        elif isinstance(value, dict):  # an options section: flat, one option a line
            lines.append(f"{prefix}{key}:")
            lines.extend(f"    {option}: {_flow(setting)}" for option, setting in value.items())
        else:
            lines.append(f"{prefix}{key}: {_flow(value)}")
    return "".join(f"{indent}{line}\n" for line in lines)


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000).strip()
    return text.removesuffix("\n...")  # the document end PyYAML adds after a bare scalar


def add_to_config(path: Path, entry: dict[str, Any], skipped: dict[str, str]) -> None:
    """Append ``entry`` to the ``models:`` list of ``path``; refuse a name already there."""
    known = load_config(path).model_names
    if entry["name"] in known:
        raise ConfigError(
            f"{path} already has a model '{entry['name']}' (configured: {', '.join(known)}): "
            "choose another --name or edit that entry"
        )
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    start, end = _models_block(lines, path)
    indent = _item_indent(lines[start:end])
    block = render(entry, skipped, indent)
    before = lines[:end]
    if before and not before[-1].endswith("\n"):
        before[-1] += "\n"
    updated = "".join([*before, block, *lines[end:]])
    parse_config(yaml.safe_load(updated), path, environ={})
    _replace(path, updated)


def _models_block(lines: list[str], path: Path) -> tuple[int, int]:
    """The line range of the ``models:`` block (to the next top-level key or the end)."""
    starts = [i for i, line in enumerate(lines) if line.startswith("models:")]
    if not starts:
        raise ConfigError(f"invalid configuration in {path}: no top-level 'models:' list")
    start = starts[0]
    end = next(
        (i for i in range(start + 1, len(lines)) if _TOP_LEVEL_KEY.match(lines[i])), len(lines)
    )
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # keep the blank lines that separate the next section
    return start, end


def _item_indent(block: list[str]) -> str:
    for line in block:
        match = _LIST_ITEM.match(line)
        if match:
            return match.group(1)
    return _DEFAULT_INDENT


def _replace(path: Path, text: str) -> None:
    """Write through a temporary file in the same directory: never a half-written config."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        Path(temporary).chmod(path.stat().st_mode & 0o777)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
