"""``relearn ab ...`` and ``relearn registry ...``: their arguments (argparse only, so building
the parser stays instant); the handlers are in ``relearn.abtest.commands``.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

AB_HELP = "start, check, expand, pause, roll back or promote A/B tests"
REGISTRY_HELP = "list versions, move aliases, promote or roll back"


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``ab`` and ``registry`` with their handlers (``relearn`` resolves them when chosen)."""
    ab = commands.add_parser("ab", help=AB_HELP, description=AB_HELP)
    add_ab_arguments(ab)
    ab.set_defaults(handler="relearn.abtest.commands:run_ab")
    registry = commands.add_parser("registry", help=REGISTRY_HELP, description=REGISTRY_HELP)
    add_registry_arguments(registry)
    registry.set_defaults(handler="relearn.abtest.commands:run_registry")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True)
    parser.add_argument("--by", default=getpass.getuser(), help="who (for the alias history)")


def add_ab_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="ab_command", required=True, metavar="ACTION")
    start = actions.add_parser("start", help="start testing a version (default: the challenger)")
    start.add_argument("--version")
    start.add_argument("--traffic", type=int, help="challenger share in %% (default: 1st stage)")
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


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="versions with their aliases and tags")
    listing.add_argument("--model", required=True)
    history = actions.add_parser("history", help="every alias change: who, when, why")
    history.add_argument("--model", required=True)
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
    to.add_argument("--to-version")
    to.add_argument("--to", choices=["previous"], help="the last known good: previous_champion")
    for sub in (promote, alias, rollback):
        _common(sub)
        sub.add_argument("--reason", default="by hand")
