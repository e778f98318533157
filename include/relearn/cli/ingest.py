"""Handler of ``ingest``: a file's rows into the prediction log, bad rows reported."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from relearn.collect.ingest import IngestKind, ingest_file
from relearn.config import load_config
from relearn.settings import load_settings

if TYPE_CHECKING:
    import argparse

# Bad rows shown on the terminal; all of them go to --rejected-out.
SHOWN_BAD_ROWS = 20


def ingest(args: argparse.Namespace) -> int:
    """Exit 0 when every row was taken, 1 when some were rejected (the good ones are kept)."""
    kind = IngestKind(args.kind)
    report = ingest_file(
        load_settings().database_url("relearn"),
        load_config(args.config),
        kind,
        Path(args.file),
        model=args.model,
    )
    for bad in report.bad[:SHOWN_BAD_ROWS]:
        print(f"{report.unit} {bad.row}: {'; '.join(bad.reasons)}", file=sys.stderr)
    if len(report.bad) > SHOWN_BAD_ROWS:
        more = len(report.bad) - SHOWN_BAD_ROWS
        hint = "" if args.rejected_out else " (see them all with --rejected-out FILE)"
        print(f"... and {more} more rejected rows{hint}", file=sys.stderr)
    if args.rejected_out:
        with Path(args.rejected_out).open("w") as out:
            for bad in report.bad:
                where = {report.unit: bad.row}
                out.write(json.dumps({**where, "model": bad.model, "reasons": bad.reasons}))
                out.write("\n")
    if kind is IngestKind.PREDICTIONS:
        taken = f"{report.logged} logged, {report.repeated} already in the log"
    else:
        taken = f"{report.logged} attached, {report.already_labelled} already labelled"
    print(f"{args.file}: {report.rows} rows: {taken}, {len(report.bad)} rejected")
    return 1 if report.bad else 0
