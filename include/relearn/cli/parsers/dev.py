"""``simulate``, ``stack``, ``demo``: the local development stack.

Transitional: these commands move to the dev package, which registers them through the
``relearn.cli`` entry-point group; its registration then takes their names first and
``add_command`` leaves them alone. Delete this module and ``relearn.cli.dev`` with that move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.cli.parsers import add_command

if TYPE_CHECKING:
    import argparse


def register(commands: argparse._SubParsersAction) -> None:
    simulate = add_command(
        commands,
        "simulate",
        "relearn.cli.dev:simulate",
        "feed simulated traffic for the past DAYS into the log",
    )
    simulate.add_argument("--model", help="only this model")
    simulate.add_argument("--days", type=float, default=7)
    simulate.add_argument("--drift", choices=["none", "covariate", "concept"], default="none")

    stack = add_command(commands, "stack", "relearn.cli.dev:stack_up", "start or stop the stack")
    actions = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start everything; Ctrl-C stops it")
    up.add_argument("--traffic", action="store_true", help="keep feeding live demo traffic")
    up.add_argument("--no-airflow", action="store_true", help="only Postgres and MLflow")
    down = actions.add_parser("down", help="stop a stack left behind")
    down.set_defaults(handler="relearn.cli.dev:stack_down")

    demo = add_command(
        commands,
        "demo",
        "relearn.cli.dev:demo",
        "headless end-to-end demo; writes .relearn/demo-summary.json",
    )
    demo.add_argument("--days", type=float, default=7)
