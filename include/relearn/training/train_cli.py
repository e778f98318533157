"""``relearn train``: train or fine-tune one model from a dataset file, without Airflow or MLflow.

For experiments and debugging outside the pipeline: the result is a saved classifier plus
its history, metrics and report images in one directory. Only the standard library is
imported at module level, because the CLI imports this module just to build its parser.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true/false/yes/no/1/0, got '{value}'")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``relearn train``; ``run_train`` is the matching handler."""
    parser.add_argument("--dataset", type=Path, required=True, help=".parquet or .csv file")
    # SUPPRESS: when unset here, a --config given to the parent parser is kept, not reset.
    parser.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="configuration file (default: $RELEARN_CONFIG, else relearn.yaml)",
    )
    parser.add_argument("--model", help="model name (default: the first configured)")
    parser.add_argument("--output_dir", "--output-dir", dest="output_dir", type=Path, required=True)
    parser.add_argument(
        "--fine_tune",
        "--fine-tune",
        dest="fine_tune",
        type=_parse_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="continue training the classifier in --model_path (true/false, default false)",
    )
    parser.add_argument(
        "--model_path",
        "--model-path",
        dest="model_path",
        type=Path,
        help="directory of a saved classifier (the model/ of an earlier run)",
    )
    parser.add_argument("--learning_rate", "--learning-rate", dest="learning_rate", type=float)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--random_seed", "--random-seed", dest="random_seed", type=int)


def run_train(args: argparse.Namespace) -> int:
    """Train as ``args`` say and print the result as one JSON object; 1 on bad input."""
    from relearn.config import config_path
    from relearn.training.from_file import train_from_dataset

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
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"relearn train: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0
