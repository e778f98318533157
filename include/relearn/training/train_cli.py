"""``relearn train``: train or fine-tune one model from a dataset file, without Airflow or MLflow.

For experiments and debugging outside the pipeline: the result is a saved classifier plus
its history, metrics and report images in one directory. The command's options are
registered by ``relearn.cli.parsers.training``; the training is ``relearn.training.from_file``.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from pydantic import ValidationError

from relearn.config import config_path, describe_errors
from relearn.training.from_file import train_from_dataset

if TYPE_CHECKING:
    import argparse


def run_train(args: argparse.Namespace) -> int:
    """Train as ``args`` say and print the result as one JSON object; 1 on bad input."""
    try:
        result = train_from_dataset(
            args.dataset,
            getattr(args, "config", None) or config_path(),
            args.output_dir,
            model=args.model,
            fine_tune=args.fine_tune,
            model_path=args.model_path,
            learning_rate=args.learning_rate,
            epochs=args.epochs,
            random_seed=args.random_seed,
            batches=getattr(args, "batches", None),
        )
    except ValidationError as error:  # an out-of-range option such as --epochs -3
        print(f"relearn train: invalid option: {describe_errors(error)}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as error:
        print(f"relearn train: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0
