"""Handler of ``model init``: infer a draft entry from the user's data, print or add it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from relearn.config import ModelKind, config_path
from relearn.onboarding.draft import draft_entry
from relearn.onboarding.entry import add_to_config, render

if TYPE_CHECKING:
    import argparse


def model_init(args: argparse.Namespace) -> int:
    try:
        kind = ModelKind(args.kind)
    except ValueError:
        known = ", ".join(k.value for k in ModelKind)
        raise ValueError(f"unknown --kind '{args.kind}' (one of: {known})") from None
    draft = draft_entry(
        Path(args.dataset),
        name=args.name,
        label=args.label,
        time_column=args.time_column,
        kind=kind,
    )
    if not args.write:
        print(render(draft.entry, draft.skipped), end="")
        return 0
    for column, reason in draft.skipped.items():
        print(f"relearn: column '{column}' is not a feature: {reason}", file=sys.stderr)
    path = Path(args.config).expanduser() if args.config else config_path()
    add_to_config(path, draft.entry, draft.skipped)
    print(
        f"added model '{args.name}' ({len(draft.entry['features'])} features, "
        f"{draft.rows} rows read) to {path}: review it, then run `relearn config`"
    )
    return 0
