"""Handlers of the development commands; each takes the parsed arguments, returns an exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.config import load_config
from relearn.settings import load_settings
from relearn_dev.demo import run_demo, run_stack, simulate_days
from relearn_dev.stack.postgres import EmbeddedPostgres
from relearn_dev.stack.services import owner_file, pid_file
from relearn_dev.stack.supervisor import stop_owner, stop_recorded

if TYPE_CHECKING:
    import argparse


def simulate(args: argparse.Namespace) -> int:
    settings = load_settings()
    config = load_config(args.config)
    models = [config.model(args.model)] if args.model else list(config.models)
    for model_cfg in models:
        stats = simulate_days(model_cfg, settings, days=args.days, drift=args.drift)
        print(
            f"{model_cfg.name}: {stats.predictions:,} predictions, "
            f"{stats.outcomes_revealed:,} outcomes, accuracy {stats.accuracy:.3f}"
        )
    return 0


def stack_up(args: argparse.Namespace) -> int:
    return run_stack(load_settings(), traffic=args.traffic, airflow=not args.no_airflow)


def stack_down(args: argparse.Namespace) -> int:
    settings = load_settings()
    owner = stop_owner(owner_file(settings))
    if owner is not None:
        print(f"stopped `relearn stack up` (pid {owner}) and everything it started")
    # What a supervisor that died left behind (nothing after an orderly stop).
    stopped = stop_recorded(pid_file(settings))
    # Without its password file no stack was ever started here: nothing to stop, nothing made.
    if settings.embedded_postgres and settings.postgres_password_file.exists():
        EmbeddedPostgres.from_settings(settings).stop()
        stopped.append("postgres")
    print(f"stopped: {', '.join(stopped)}")
    return 0


def demo(args: argparse.Namespace) -> int:
    return run_demo(load_settings(), days=args.days)
