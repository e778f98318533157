"""``db-url``, ``config``, ``migrate``, ``bootstrap``, ``summary``: the stack's state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.cli.parsers import add_command

if TYPE_CHECKING:
    import argparse


def register(commands: argparse._SubParsersAction) -> None:
    db_url = add_command(
        commands,
        "db-url",
        "relearn.cli.state:db_url",
        "print the connection URL of a database of the stack",
    )
    db_url.add_argument(
        "database", nargs="?", default="relearn", choices=["airflow", "mlflow", "relearn"]
    )
    add_command(
        commands, "config", "relearn.cli.state:check_config", "validate the configuration file"
    )
    add_command(
        commands, "migrate", "relearn.cli.state:migrate", "apply Relearn's schema migrations"
    )
    bootstrap = add_command(
        commands,
        "bootstrap",
        "relearn.cli.models:bootstrap",
        "train and register v1 as champion where missing",
        needs_mlflow=True,
    )
    bootstrap.add_argument("--model", help="only this model")
    bootstrap.add_argument(
        "--dataset",
        metavar="FILE",
        help="train the model's v1 on this labelled CSV or Parquet file (with --model); "
        "without it, only demo models with a `simulation:` section can be bootstrapped",
    )
    bootstrap.add_argument(
        "--from-mlflow",
        metavar="URI",
        help="import this scikit-learn model (models:/NAME/VERSION or runs:/RUN_ID/PATH) "
        "as the champion of --model",
    )
    bootstrap.add_argument(
        "--reference",
        metavar="FILE",
        help="with --from-mlflow: CSV/Parquet rows the model was validated on, with labels",
    )
    summary = add_command(
        commands,
        "summary",
        "relearn.cli.models:summary",
        "print the state of the running stack",
        needs_mlflow=True,
    )
    summary.add_argument("--model", help="only this model (default: every model)")
    summary.add_argument("--json", action="store_true")
