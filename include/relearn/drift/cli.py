"""``relearn drift``: its arguments (argparse only, so building the parser stays instant); the
handler is in ``relearn.drift.commands``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

DRIFT_HELP = "check the champions for drift (and retrain when it is found)"


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``drift`` with its handler (``relearn`` resolves it when chosen)."""
    drift = commands.add_parser("drift", help=DRIFT_HELP, description=DRIFT_HELP)
    add_drift_arguments(drift)
    drift.set_defaults(handler="relearn.drift.commands:run_drift")


def add_drift_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="only this model (default: every configured model)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check-once", action="store_true", help="one check, then exit (default)")
    mode.add_argument("--loop", action="store_true", help="check every --interval until Ctrl-C")
    parser.add_argument(
        "--interval", type=float, help="minutes between checks (default: check_interval_minutes)"
    )
    parser.add_argument("--count", type=int, help="with --loop: stop after this many rounds")
    parser.add_argument("--dry-run", action="store_true", help="report only, never retrain")
    parser.add_argument("--window-hours", type=int)
    parser.add_argument("--threshold", type=float)
    parser.add_argument("--min-rows", type=int)
    parser.add_argument("--json", action="store_true", help="print each report as JSON")
    parser.add_argument(
        "--history", type=int, metavar="N", help="print the last N reports per model and exit"
    )
