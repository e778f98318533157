"""Handlers of ``simulate``, ``stack up|down`` and ``demo``: the local development stack.

Transitional, like ``relearn.cli.parsers.dev``: the dev package takes these commands over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relearn.cli.state import selected_models
from relearn.demo import run_demo, run_stack, simulate_days
from relearn.settings import load_settings
from relearn.stack.postgres import EmbeddedPostgres
from relearn.stack.services import pid_file
from relearn.stack.supervisor import stop_recorded

if TYPE_CHECKING:
    import argparse


def simulate(args: argparse.Namespace) -> int:
    settings = load_settings()
    for model_cfg in selected_models(args):
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
    stopped = stop_recorded(pid_file(settings))
    if settings.embedded_postgres:
        EmbeddedPostgres(settings.home / "postgres", settings.pg_port).stop()
        stopped.append("postgres")
    print(f"stopped: {', '.join(stopped)}")
    return 0


def demo(args: argparse.Namespace) -> int:
    return run_demo(load_settings(), days=args.days)
