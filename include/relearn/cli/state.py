"""Handlers of ``db-url``, ``config`` and ``migrate``: light, so ``relearn db-url`` is instant."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.config import load_config
from relearn.settings import load_settings
from relearn.store.migrations import migrate as apply_migrations

if TYPE_CHECKING:
    import argparse

    from relearn.config import ModelConfig


def selected_models(args: argparse.Namespace) -> list[ModelConfig]:
    """The model named by ``--model``, or every configured model."""
    config = load_config(args.config)
    return [config.model(args.model)] if args.model else list(config.models)


def db_url(args: argparse.Namespace) -> int:
    print(load_settings().database_url(args.database))
    return 0


def check_config(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    print(f"{config.source}: {len(config.models)} model(s): {', '.join(config.model_names)}")
    return 0


def migrate(args: argparse.Namespace) -> int:
    applied = apply_migrations(load_settings().database_url("relearn"))
    print(f"applied migrations {applied}" if applied else "schema is up to date")
    return 0
