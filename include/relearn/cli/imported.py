"""Handler of ``bootstrap --from-mlflow``: import an existing scikit-learn model as champion."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from relearn.config import load_config
from relearn.onboarding.imported import import_champion
from relearn.services import Services
from relearn.settings import load_settings

if TYPE_CHECKING:
    import argparse


def bootstrap_from_mlflow(args: argparse.Namespace) -> int:
    if not args.from_mlflow:
        raise ValueError("--reference goes with --from-mlflow URI (the model to import)")
    if not args.model:
        raise ValueError("--from-mlflow imports one model: name it with --model NAME")
    if not args.reference:
        raise ValueError(
            "--from-mlflow needs --reference FILE (CSV or Parquet rows the model was "
            "validated on, with labels) for its reference accuracy and drift profile"
        )
    model_cfg = load_config(args.config).model(args.model)
    services = Services.from_settings(load_settings())
    result = import_champion(services, model_cfg, args.from_mlflow, Path(args.reference))
    if result.created:
        state = f"imported, reference accuracy {result.metrics['accuracy']:.3f}"
    else:
        state = "imported before"
    print(f"{result.model_name}: v{result.version} is champion ({state}; {result.source_uri})")
    return 0
