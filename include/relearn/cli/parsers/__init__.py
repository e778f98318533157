"""Registration of the built-in commands: argparse only, so building the parser stays instant.

Each module provides ``register(commands)``, which adds its subcommands with ``add_command``;
a handler is named by a ``"module:function"`` string that ``relearn.cli.app.main`` imports
only when that command runs.
"""

from __future__ import annotations

import argparse


def add_command(
    commands: argparse._SubParsersAction,
    name: str,
    handler: str,
    help_text: str,
    *,
    needs_mlflow: bool = False,
) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` run by ``handler`` (``"package.module:function"``).

    ``needs_mlflow``: ``main`` checks that the tracking server answers before running it, so
    an absent server fails at once instead of after the MLflow client's minutes of retries.
    Extension commands are registered first and may replace a built-in one: for a name
    already taken, the returned parser is a detached one, so the caller's ``add_argument``
    calls go nowhere.
    """
    if name in commands.choices:
        return argparse.ArgumentParser(add_help=False)
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler, needs_mlflow=needs_mlflow)
    return parser
