"""The ``relearn`` command: assemble the subcommands, run the chosen one, report failures.

Commands come from the built-in registration modules (``relearn.cli.parsers``) and from
extension packages through the entry-point group ``relearn.cli``. An extension's entry point
names a ``register(commands: argparse._SubParsersAction) -> None`` callable in a light module
(argparse only at import); it adds subparsers and sets ``handler="package.module:function"``
(and optionally ``needs_mlflow=True``) with ``set_defaults``. A handler takes the
``argparse.Namespace`` and returns the exit code: 0 ok, 1 bad configuration or input, 2 the
stack cannot be reached or started.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, NoReturn

from relearn.cli.envfile import apply_env_file
from relearn.cli.errors import check_mlflow, explain
from relearn.cli.parsers import (
    analysis,
    collection,
    deployment,
    onboarding,
    retraining,
    state,
    training,
)
from relearn.settings import load_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from relearn.settings import Settings

    Register = Callable[[argparse._SubParsersAction], None]
    Handler = Callable[[argparse.Namespace], int]

ENTRY_POINT_GROUP = "relearn.cli"
BUILT_IN: tuple[Register, ...] = (
    state.register,
    retraining.register,
    training.register,
    deployment.register,
    onboarding.register,
    collection.register,
    analysis.register,
)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are bad input: one line and exit 1 (2 means the stack is unreachable)."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _extensions() -> list[Register]:
    """The ``register`` callables of the installed extension packages."""
    found = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found.append(entry_point.load())
        except Exception as error:  # a broken extension must not take the built-ins down
            print(f"relearn: ignoring commands of {entry_point.value} ({error})", file=sys.stderr)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="relearn", description="Every step of Relearn from a terminal, without Airflow."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--config", help="configuration file (default: $RELEARN_CONFIG)")
    parser.set_defaults(needs_mlflow=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Extensions first: a built-in command whose name an extension took steps aside.
    for register in (*_extensions(), *BUILT_IN):
        register(commands)
    return parser


def _handler(reference: str) -> Handler:
    module, _, function = reference.partition(":")
    # The one deliberately lazy import: only the chosen command's module (with its torch,
    # MLflow or pandas) is loaded, so light commands such as `relearn db-url` start instantly.
    return getattr(importlib.import_module(module), function)


def _configure_logging(verbose: bool) -> None:
    # Per-file download bars drown the progress lines an operator actually needs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # stdout carries the command's result (JSON a script parses); MLflow would print "View
    # run ... at: URL" lines into it whenever a run ends. Always, whatever the shell says (the
    # dev stack turns them back on for the Airflow processes it starts: their logs keep them).
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("alembic", "urllib3", "git", "mlflow.store.db.utils"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    settings: Settings | None = None
    try:
        apply_env_file()
        settings = load_settings()
        if args.needs_mlflow:
            check_mlflow(settings)
        return _handler(args.handler)(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        failure = explain(error, settings)
        if failure is None:
            raise
        print(f"relearn: {failure.message}", file=sys.stderr)
        return failure.exit_code


if __name__ == "__main__":
    sys.exit(main())
