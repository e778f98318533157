"""Handlers of ``bootstrap``, ``reinforce`` and ``summary``: models, MLflow and Postgres."""

from __future__ import annotations

import json
import sys
import uuid
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from relearn.bootstrap import (
    BootstrapResult,
    NoTrainingDataError,
    bootstrap_model,
    dataset_reference,
)
from relearn.cli.imported import bootstrap_from_mlflow
from relearn.cli.state import selected_models
from relearn.config import load_config
from relearn.retraining import RetrainingError
from relearn.retraining.loop import reinforce as reinforce_model
from relearn.retraining.options import ReinforceOptions
from relearn.services import NoChampionError, Services
from relearn.settings import load_settings
from relearn.summary import collect_summary, render_summary

if TYPE_CHECKING:
    import argparse


def bootstrap(args: argparse.Namespace) -> int:
    """Dispatch on where v1 comes from: an MLflow model, the user's dataset, else the demo."""
    if args.from_mlflow or args.reference:
        if args.dataset:
            raise ValueError("--dataset and --from-mlflow exclude each other: choose one source")
        return bootstrap_from_mlflow(args)
    services = Services.from_settings(load_settings())
    if args.dataset:
        if not args.model:
            raise ValueError("--dataset needs --model NAME: a dataset holds one model's data")
        model_cfg = load_config(args.config).model(args.model)
        path = Path(args.dataset)
        _report(bootstrap_model(services, model_cfg, partial(dataset_reference, model_cfg, path)))
        return 0
    status = 0
    for model_cfg in selected_models(args):
        try:
            _report(bootstrap_model(services, model_cfg))
        except NoTrainingDataError as error:  # the other models still get their champion
            print(f"relearn: {error}", file=sys.stderr)
            status = 1
    return status


def _report(result: BootstrapResult) -> None:
    state = "registered" if result.created else "already deployed"
    print(f"{result.model_name}: v{result.version} is champion ({state})")


def reinforce(args: argparse.Namespace) -> int:
    services = Services.from_settings(load_settings())
    status = 0
    for model_cfg in selected_models(args):
        options = ReinforceOptions.from_config(
            model_cfg,
            lookback_days=args.lookback_days,
            confidence_threshold=args.confidence_threshold,
            min_error_samples=args.min_error_samples,
            fine_tune=not args.from_scratch,
            incremental=args.incremental,
            epochs=args.epochs,
            dry_run=args.dry_run,
            source="manual",
        )
        try:
            run = reinforce_model(services, model_cfg, options, trigger_key=f"cli__{uuid.uuid4()}")
        except (RetrainingError, NoChampionError) as error:
            print(f"relearn: {model_cfg.name}: {error}", file=sys.stderr)
            status = 1
            continue
        print(
            json.dumps(
                {
                    "model": model_cfg.name,
                    "retraining_run_id": str(run.id),
                    "status": run.status,
                    "model_version": run.model_version,
                    "metrics": run.metrics,
                },
                default=str,
            )
        )
    return status


def summary(args: argparse.Namespace) -> int:
    names = [model_cfg.name for model_cfg in selected_models(args)]
    state = collect_summary(Services.from_settings(load_settings()), names)
    print(json.dumps(state, indent=2) if args.json else render_summary(state))
    return 0
