"""The development commands of ``relearn``, registered through the ``relearn.cli`` entry point.

Argparse only: ``relearn`` imports this module to build its parser, and resolves a handler
(``relearn_dev.commands``) only when its command is chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

HANDLERS = "relearn_dev.commands"


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``simulate``, ``stack up|down`` and ``demo`` to the ``relearn`` command."""
    simulate = commands.add_parser(
        "simulate",
        help="feed simulated traffic for the past DAYS into the log",
        description="feed simulated traffic for the past DAYS into the log",
    )
    simulate.set_defaults(handler=f"{HANDLERS}:simulate")
    simulate.add_argument("--model", help="only this model")
    simulate.add_argument("--days", type=float, default=7)
    simulate.add_argument("--drift", choices=["none", "covariate", "concept"], default="none")

    stack = commands.add_parser(
        "stack", help="start or stop the local stack", description="start or stop the local stack"
    )
    actions = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start everything; Ctrl-C stops it")
    up.set_defaults(handler=f"{HANDLERS}:stack_up")
    up.add_argument("--traffic", action="store_true", help="keep feeding live demo traffic")
    up.add_argument("--no-airflow", action="store_true", help="only Postgres and MLflow")
    down = actions.add_parser("down", help="stop a stack left behind")
    down.set_defaults(handler=f"{HANDLERS}:stack_down")

    demo = commands.add_parser(
        "demo",
        help="headless end-to-end demo; writes .relearn/demo-summary.json",
        description="headless end-to-end demo; writes .relearn/demo-summary.json",
    )
    demo.set_defaults(handler=f"{HANDLERS}:demo")
    demo.add_argument("--days", type=float, default=7)
