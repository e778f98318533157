"""``model init``: draft a model entry from a labelled dataset file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.cli.parsers import add_command

if TYPE_CHECKING:
    import argparse

# The model kinds, spelled out here so that building the parser imports no pydantic models.
KINDS = ("torch_mlp", "sklearn_logreg", "sklearn_hgb")


def register(commands: argparse._SubParsersAction) -> None:
    model = commands.add_parser("model", help="describe a model of your own to Relearn")
    actions = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    init = add_command(
        actions,
        "init",
        "relearn.cli.onboarding:model_init",
        "print a draft model entry inferred from a labelled CSV or Parquet file",
    )
    init.add_argument("--name", required=True, help="the model's name (lower case, digits, _)")
    init.add_argument("--dataset", required=True, metavar="FILE", help="CSV or Parquet file")
    init.add_argument("--label", required=True, metavar="COLUMN", help="the column to predict")
    init.add_argument(
        "--time-column",
        metavar="COLUMN",
        help="the column that orders rows in time (not a feature; bootstrap splits by it)",
    )
    init.add_argument("--kind", default=KINDS[0], help=f"model kind ({', '.join(KINDS)}, ...)")
    init.add_argument(
        "--write",
        action="store_true",
        help="add the entry to the configuration file instead of printing it",
    )
