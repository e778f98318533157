"""``train``: train or fine-tune from a dataset file (``relearn.training.train_cli``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from relearn.cli.parsers import add_command

_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def register(commands: argparse._SubParsersAction) -> None:
    add_train_arguments(
        add_command(
            commands,
            "train",
            "relearn.training.train_cli:run_train",
            "train or fine-tune from a dataset file; prints JSON",
        )
    )


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true/false/yes/no/1/0, got '{value}'")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``relearn train``; ``relearn.training.train_cli.run_train`` runs them."""
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
    parser.add_argument(
        "--batches",
        type=_positive_int,
        metavar="N",
        help="train on N time-ordered batches in turn (time column, else file order), "
        "--epochs each, with a checkpoint after each batch",
    )


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return number
