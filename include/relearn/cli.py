"""``relearn`` command line: every step of the product without Airflow.

Heavy modules are imported inside the commands so ``relearn db-url`` answers instantly.
Exit codes: 0 ok, 1 bad configuration or input, 2 the stack cannot start or be reached.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

log = logging.getLogger("relearn")


def _settings():
    from relearn.settings import load_settings

    return load_settings()


def cmd_db_url(args: argparse.Namespace) -> int:
    print(_settings().database_url(args.database))
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from relearn.config import load_config

    config = load_config(args.config)
    print(f"{config.source}: {len(config.models)} model(s): {', '.join(config.model_names)}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from relearn.store.migrations import migrate

    applied = migrate(_settings().database_url("relearn"))
    print(f"applied migrations {applied}" if applied else "schema is up to date")
    return 0


def _models(args: argparse.Namespace) -> list:
    from relearn.config import load_config

    config = load_config(args.config)
    return [config.model(args.model)] if args.model else list(config.models)


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from relearn.bootstrap import bootstrap_model
    from relearn.services import Services

    for model_cfg in _models(args):
        result = bootstrap_model(Services.from_settings(_settings()), model_cfg)
        state = "registered" if result.created else "already deployed"
        print(f"{result.model_name}: v{result.version} is champion ({state})")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from relearn.demo import simulate_days

    settings = _settings()
    for model_cfg in _models(args):
        stats = simulate_days(model_cfg, settings, days=args.days, drift=args.drift)
        print(
            f"{model_cfg.name}: {stats.predictions:,} predictions, "
            f"{stats.outcomes_revealed:,} outcomes, accuracy {stats.accuracy:.3f}"
        )
    return 0


def cmd_reinforce(args: argparse.Namespace) -> int:
    import json
    import uuid

    from relearn.reinforce import ReinforceOptions, RetrainingError, reinforce
    from relearn.services import Services

    settings = _settings()
    services = Services.from_settings(settings)
    status = 0
    for model_cfg in _models(args):
        options = ReinforceOptions.from_config(
            model_cfg,
            lookback_days=args.lookback_days,
            confidence_threshold=args.confidence_threshold,
            min_error_samples=args.min_error_samples,
            fine_tune=not args.from_scratch,
            epochs=args.epochs,
            dry_run=args.dry_run,
            source="manual",
        )
        try:
            run = reinforce(services, model_cfg, options, run_key=f"cli__{uuid.uuid4()}")
        except RetrainingError as error:
            print(f"relearn: {model_cfg.name}: {error}", file=sys.stderr)
            status = 1
            continue
        print(
            json.dumps(
                {
                    "model": model_cfg.name,
                    "run_id": str(run.id),
                    "status": run.status,
                    "model_version": run.model_version,
                    "metrics": run.metrics,
                },
                default=str,
            )
        )
    return status


def cmd_request(args: argparse.Namespace) -> int:
    import json

    from relearn.config import load_config
    from relearn.store import requests
    from relearn.store.db import transaction

    with transaction(_settings().database_url("relearn")) as connection:
        if args.request_command == "create":
            found = [
                requests.create_request(
                    connection,
                    model_name=args.model,
                    known_models=load_config(args.config).model_names,
                    reason=args.reason,
                    priority=args.priority,
                    requested_by=args.requested_by,
                )
            ]
        elif args.request_command == "cancel":
            found = [requests.cancel_request(connection, args.id)]
        else:
            found = requests.list_requests(connection, status=args.status, limit=args.limit)
    for request in found:
        print(json.dumps(request.as_dict()))
    return 0


def cmd_stack_up(args: argparse.Namespace) -> int:
    from relearn.demo import run_stack

    return run_stack(_settings(), traffic=args.traffic, airflow=not args.no_airflow)


def cmd_stack_down(args: argparse.Namespace) -> int:
    from relearn.stack.postgres import EmbeddedPostgres
    from relearn.stack.services import pid_file
    from relearn.stack.supervisor import stop_recorded

    settings = _settings()
    stopped = stop_recorded(pid_file(settings))
    if settings.embedded_postgres:
        EmbeddedPostgres(settings.home / "postgres", settings.pg_port).stop()
        stopped.append("postgres")
    print(f"stopped: {', '.join(stopped)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from relearn.demo import run_demo

    return run_demo(_settings(), days=args.days)


def cmd_summary(args: argparse.Namespace) -> int:
    import json

    from relearn.config import load_config
    from relearn.services import Services
    from relearn.summary import collect_summary, render_summary

    settings = _settings()
    names = load_config(args.config).model_names
    summary = collect_summary(Services.from_settings(settings), names)
    print(json.dumps(summary, indent=2) if args.json else render_summary(summary))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relearn", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--config", help="configuration file (default: $RELEARN_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    db_url = add("db-url", cmd_db_url, "print the connection URL of a database of the stack")
    db_url.add_argument(
        "database", nargs="?", default="relearn", choices=["airflow", "mlflow", "relearn"]
    )
    add("config", cmd_config_check, "validate the configuration file")
    add("migrate", cmd_migrate, "apply Relearn's schema migrations")
    boot = add("bootstrap", cmd_bootstrap, "train and register v1 as champion where missing")
    boot.add_argument("--model", help="only this model")
    sim = add("simulate", cmd_simulate, "feed simulated traffic for the past DAYS into the log")
    sim.add_argument("--model", help="only this model")
    sim.add_argument("--days", type=float, default=7)
    sim.add_argument("--drift", choices=["none", "covariate", "concept"], default="none")
    from relearn.training.train_cli import add_train_arguments, run_train

    add_train_arguments(
        add("train", run_train, "train or fine-tune from a dataset file; prints JSON")
    )
    reinforce = add("reinforce", cmd_reinforce, "run the auto-reinforcement loop once, now")
    reinforce.add_argument("--model", help="only this model")
    reinforce.add_argument("--lookback-days", type=int)
    reinforce.add_argument("--confidence-threshold", type=float)
    reinforce.add_argument("--min-error-samples", type=int)
    reinforce.add_argument("--epochs", type=int)
    reinforce.add_argument("--from-scratch", action="store_true", help="do not fine-tune")
    reinforce.add_argument(
        "--dry-run", action="store_true", help="train and gate, register nothing"
    )
    from relearn.drift.cli import add_drift_arguments, run_drift

    add_drift_arguments(
        add("drift", run_drift, "check the champions for drift (and retrain when it is found)")
    )
    from relearn.abtest.cli import add_ab_arguments, add_registry_arguments, run_ab, run_registry

    add_ab_arguments(
        add("ab", run_ab, "start, check, expand, pause, roll back or promote A/B tests")
    )
    add_registry_arguments(
        add("registry", run_registry, "list versions, move aliases, promote or roll back")
    )
    request = add("request", cmd_request, "file, list or cancel manual retraining requests")
    request_commands = request.add_subparsers(dest="request_command", required=True)
    create = request_commands.add_parser("create", help="queue a retraining of a model")
    create.add_argument("--model", required=True)
    create.add_argument("--reason", help="why (stored verbatim, at most 2,000 characters)")
    create.add_argument("--priority", choices=["high", "normal", "low"], default="normal")
    create.add_argument("--requested-by", help="the requesting user's UUID")
    listing = request_commands.add_parser("list", help="newest requests first, one JSON each")
    listing.add_argument("--status")
    listing.add_argument("--limit", type=int, default=50)
    cancel = request_commands.add_parser("cancel", help="cancel a request nobody claimed yet")
    cancel.add_argument("id")
    stack = add("stack", lambda _a: 2, "start or stop the local stack")
    stack_commands = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
    up = stack_commands.add_parser("up", help="start everything; Ctrl-C stops it")
    up.set_defaults(handler=cmd_stack_up)
    up.add_argument("--traffic", action="store_true", help="keep feeding live demo traffic")
    up.add_argument("--no-airflow", action="store_true", help="only Postgres and MLflow")
    down = stack_commands.add_parser("down", help="stop a stack left behind")
    down.set_defaults(handler=cmd_stack_down)
    demo = add("demo", cmd_demo, "headless end-to-end demo; writes .relearn/demo-summary.json")
    demo.add_argument("--days", type=float, default=7)
    summary = add("summary", cmd_summary, "print the state of the running stack")
    summary.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Per-file download bars drown the progress lines an operator actually needs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("alembic", "urllib3", "git", "mlflow.store.db.utils"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from relearn.abtest import DeployError
    from relearn.config import ConfigError
    from relearn.stack import StackError

    try:
        return args.handler(args)
    except (ConfigError, ValueError, FileNotFoundError, DeployError) as error:
        print(f"relearn: {error}", file=sys.stderr)
        return 1
    except StackError as error:
        print(f"relearn: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
