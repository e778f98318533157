"""``relearn drift``: check once, or keep checking every interval, without Airflow.

A check that asks for retraining runs it right here (the same steps as the DAG), so the
loop alone keeps a model current; ``--dry-run`` only reports. A model that cannot be checked
(no champion, no reference profile) or whose retraining fails gets one line on stderr and
exit code 1; the other models are still checked.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING

from relearn.config import load_config
from relearn.drift.monitor import CheckOptions, DriftCheckError, check, describe
from relearn.drift.retrain import retrain_options
from relearn.retraining import RetrainingError
from relearn.retraining.loop import reinforce
from relearn.retraining.options import ReinforceOptions
from relearn.services import NoChampionError, Services, utcnow
from relearn.settings import load_settings
from relearn.store.db import transaction
from relearn.store.drift_reports import recent_reports

if TYPE_CHECKING:
    import argparse
    from datetime import datetime

    from relearn.config import ModelConfig


def _check_model(
    services: Services, model_cfg: ModelConfig, args: argparse.Namespace, now: datetime
) -> None:
    options = CheckOptions.from_config(
        model_cfg,
        window_hours=args.window_hours,
        threshold=args.threshold,
        min_rows=args.min_rows,
        dry_run=args.dry_run,
    )
    trigger_key = f"cli__{now.isoformat()}"
    report = check(services, model_cfg, options, trigger_key=trigger_key, now=now)
    if args.json:
        print(json.dumps({"id": report.id, **_public(report)}, default=str))
    else:
        print(f"{model_cfg.name}: {describe(report)}")
    if report.wants_retraining:
        run_options = ReinforceOptions.from_config(model_cfg, **retrain_options(model_cfg, report))
        run = reinforce(
            services, model_cfg, run_options, trigger_key=f"drift__{report.id}", now=now
        )
        version = f"v{run.model_version}" if run.model_version else "no new version"
        print(f"{model_cfg.name}: retraining run {run.id} {run.status} ({version})")


def _public(report: object) -> dict:
    fields = ("model_name", "model_version", "checked_at", "verdict", "score", "threshold")
    extra = ("rows", "labelled_rows", "drifted_features", "action", "action_reason", "report_uri")
    return {name: getattr(report, name) for name in (*fields, *extra)}


def _print_history(services: Services, models: list[ModelConfig], args: argparse.Namespace) -> int:
    with transaction(services.database_url) as connection:
        for model_cfg in models:
            for report in recent_reports(connection, model_cfg.name, limit=args.history):
                if args.json:
                    print(json.dumps({"id": report.id, **_public(report)}, default=str))
                else:
                    print(
                        f"{model_cfg.name} {report.checked_at:%Y-%m-%d %H:%M}: {describe(report)}"
                    )
    return 0


def run_drift(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    models = [config.model(args.model)] if args.model else list(config.models)
    services = Services.from_settings(load_settings())
    if args.history:
        return _print_history(services, models, args)
    rounds = 0
    status = 0
    try:
        while True:
            now = utcnow().replace(microsecond=0)
            for model_cfg in models:
                try:
                    _check_model(services, model_cfg, args, now)
                except (NoChampionError, DriftCheckError, RetrainingError) as error:
                    print(f"relearn: {model_cfg.name}: {error}", file=sys.stderr)
                    status = 1
            rounds += 1
            if not args.loop or (args.count and rounds >= args.count):
                return status
            minutes = args.interval or min(m.drift.check_interval_minutes for m in models)
            time.sleep(minutes * 60)
    except KeyboardInterrupt:
        return status
