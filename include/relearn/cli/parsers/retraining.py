"""``reinforce`` and ``request``: retraining now, or queued for the ``manual_retraining`` DAG."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.cli.parsers import add_command

if TYPE_CHECKING:
    import argparse


def register(commands: argparse._SubParsersAction) -> None:
    reinforce = add_command(
        commands,
        "reinforce",
        "relearn.cli.models:reinforce",
        "run the auto-reinforcement loop once, now",
        needs_mlflow=True,
    )
    reinforce.add_argument("--model", help="only this model")
    reinforce.add_argument("--lookback-days", type=int)
    reinforce.add_argument("--confidence-threshold", type=float)
    reinforce.add_argument("--min-error-samples", type=int)
    reinforce.add_argument("--epochs", type=int)
    reinforce.add_argument("--from-scratch", action="store_true", help="do not fine-tune")
    reinforce.add_argument(
        "--incremental",
        action="store_true",
        default=None,
        help="fine-tune one day of the window at a time, oldest first",
    )
    reinforce.add_argument(
        "--dry-run", action="store_true", help="train and gate, register nothing"
    )

    request = add_command(
        commands,
        "request",
        "relearn.cli.retraining_requests:request",
        "file, list or cancel manual retraining requests",
    )
    actions = request.add_subparsers(dest="request_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="queue a retraining of a model")
    create.add_argument("--model", required=True)
    create.add_argument("--reason", help="why (stored verbatim, at most 2,000 characters)")
    create.add_argument("--priority", choices=["high", "normal", "low"], default="normal")
    create.add_argument("--requested-by", help="the requesting user's UUID")
    listing = actions.add_parser("list", help="newest requests first, one JSON each")
    listing.add_argument("--status")
    listing.add_argument("--limit", type=int, default=50)
    cancel = actions.add_parser("cancel", help="cancel a request nobody claimed yet")
    cancel.add_argument("id")
