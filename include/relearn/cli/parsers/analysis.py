"""``analyze``: where a model's champion is wrong, with suggestions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.cli.parsers import add_command

if TYPE_CHECKING:
    import argparse


def register(commands: argparse._SubParsersAction) -> None:
    analyze = add_command(
        commands,
        "analyze",
        "relearn.cli.analysis:analyze",
        "error analysis of a model's champion: worst segments, confusion, calibration, "
        "suggestions (computed now, not stored; --latest shows the stored one)",
        needs_mlflow=True,
    )
    analyze.add_argument("--model", required=True, help="the configured model")
    when = analyze.add_mutually_exclusive_group()
    when.add_argument(
        "--since",
        metavar="TIME",
        help="start of the window, ISO 8601 (e.g. 2026-05-01T00:00+00:00; default: 24 h ago)",
    )
    when.add_argument(
        "--latest",
        action="store_true",
        help="print the latest stored analysis (daily or of a retraining run) instead",
    )
    analyze.add_argument(
        "--until", metavar="TIME", help="end of the window, ISO 8601 (default: now)"
    )
    analyze.add_argument("--top", type=int, default=10, help="segments to print (10)")
    analyze.add_argument("--json", action="store_true", help="the findings as JSON")
