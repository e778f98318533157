"""``drift``, ``ab``, ``registry``: watching champions and moving aliases.

The handlers are ``relearn.drift.cli`` and ``relearn.abtest.cli``.
"""

from __future__ import annotations

import argparse
import getpass

from relearn.cli.parsers import add_command


def register(commands: argparse._SubParsersAction) -> None:
    add_drift_arguments(
        add_command(
            commands,
            "drift",
            "relearn.drift.cli:run_drift",
            "check the champions for drift (and retrain when it is found)",
            needs_mlflow=True,
        )
    )
    add_ab_arguments(
        add_command(
            commands,
            "ab",
            "relearn.abtest.cli:run_ab",
            "start, check, expand, pause, roll back or promote A/B tests",
            needs_mlflow=True,
        )
    )
    add_registry_arguments(
        add_command(
            commands,
            "registry",
            "relearn.abtest.cli:run_registry",
            "list versions, move aliases, promote or roll back",
            needs_mlflow=True,
        )
    )


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


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an F1 between 0 and 1 (e.g. 0.8)")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True)
    parser.add_argument("--by", default=getpass.getuser(), help="who (for the alias history)")


def add_ab_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="ab_command", required=True, metavar="ACTION")
    start = actions.add_parser("start", help="start testing a version (default: the challenger)")
    start.add_argument("--version")
    start.add_argument(
        "--traffic",
        type=int,
        help="challenger share in %% (default: the 1st stage; for a decay retraining's "
        "version the stage within abtest.decay_start_percent)",
    )
    for name, text in (
        ("check", "let the policy decide the next step now"),
        ("expand", "move to the next stage (or --traffic) now"),
        ("pause", "send no traffic to the challenger until resume"),
        ("resume", "resume a paused test"),
        ("rollback", "end the test: challenger gets nothing, alias removed"),
        ("promote", "end the test: the challenger becomes champion"),
    ):
        sub = actions.add_parser(name, help=text)
        if name == "expand":
            sub.add_argument("--traffic", type=int)
    for sub in actions.choices.values():
        _common(sub)
    status = actions.add_parser("status", help="the model's tests and their decisions")
    status.add_argument("--model", required=True)
    # Reading the tests needs only Postgres.
    status.set_defaults(needs_mlflow=False)


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="versions with their aliases and tags")
    listing.add_argument("--model", required=True)
    history = actions.add_parser("history", help="every alias change: who, when, why")
    history.add_argument("--model", required=True)
    # The alias history is a table of Relearn's database.
    history.set_defaults(needs_mlflow=False)
    promote = actions.add_parser("promote", help="make a version champion now (no A/B test)")
    promote.add_argument("--version", required=True)
    alias = actions.add_parser("alias", help="point an alias at a version (or --remove it)")
    alias.add_argument("--alias", required=True)
    target = alias.add_mutually_exclusive_group(required=True)
    target.add_argument("--version")
    target.add_argument("--remove", action="store_true")
    rollback = actions.add_parser(
        "rollback", help="emergency: champion back to a version, skipping any analysis"
    )
    to = rollback.add_mutually_exclusive_group(required=True)
    to.add_argument("--to-version", help="the same as --to VERSION")
    to.add_argument(
        "--to",
        metavar="previous|best|VERSION",
        help="previous: the last known good (previous_champion); best: the earlier version "
        "with the best recorded holdout F1 (with --min-f1: the most recent one meeting it)",
    )
    rollback.add_argument(
        "--min-f1", type=_fraction, metavar="F1", help="with --to best: the bar, e.g. 0.8"
    )
    for sub in (promote, alias, rollback):
        _common(sub)
        sub.add_argument("--reason", default="by hand")
