"""``ingest``: backfill the prediction log from a file (the HTTP API's offline twin)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.cli.parsers import add_command

if TYPE_CHECKING:
    import argparse


def register(commands: argparse._SubParsersAction) -> None:
    ingest = add_command(
        commands,
        "ingest",
        "relearn.cli.ingest:ingest",
        "load predictions or outcomes from a CSV, Parquet or JSON Lines file into the log",
    )
    ingest.add_argument("kind", choices=["predictions", "outcomes"])
    ingest.add_argument("file", help="a .csv, .parquet or .jsonl file")
    ingest.add_argument(
        "--model", help="the model of every row (default: the file's model_name column)"
    )
    ingest.add_argument(
        "--rejected-out",
        metavar="FILE",
        help="write every rejected row number with its reasons to this JSON Lines file",
    )
