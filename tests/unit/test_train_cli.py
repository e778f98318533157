"""``relearn train`` outside Airflow: datasets from the simulator, from scratch and fine-tuned."""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from relearn.cli.parsers.training import add_train_arguments
from relearn.config import ModelConfig, ModelKind, load_config
from relearn.simulate.world import World
from relearn.training.factory import load_classifier, new_classifier
from relearn.training.from_file import train_from_dataset
from relearn.training.train_cli import run_train

CONFIG_FILE = Path(__file__).resolve().parents[2] / "relearn.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROWS = 2000


@pytest.fixture(scope="module")
def cfg() -> ModelConfig:
    return load_config(CONFIG_FILE).model("churn")


@pytest.fixture(scope="module")
def dataset(cfg: ModelConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The churn world's reference rows, without a split column."""
    path = tmp_path_factory.mktemp("data") / "churn.parquet"
    World(cfg).reference_frame(ROWS).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def scratch(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    output = tmp_path_factory.mktemp("scratch")
    return train_from_dataset(dataset, CONFIG_FILE, output, epochs=8, learning_rate=0.005), output


def traffic(cfg: ModelConfig, n: int = 900) -> pd.DataFrame:
    """Later traffic from the same world, with an explicit train/validation/holdout split."""
    frame, labels = World(cfg).sample(n, datetime(2025, 1, 1, tzinfo=UTC), np.random.default_rng(3))
    split = np.array(["train", "validation", "holdout"])[np.arange(n) % 3]
    return frame.assign(**{cfg.label: labels, "split": split})


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return parser.parse_args(argv)


def weights(model_dir: str | Path) -> dict[str, torch.Tensor]:
    return load_classifier(model_dir).network.state_dict()


def test_training_from_scratch_writes_model_history_metrics_and_reports(
    scratch: tuple[dict, Path],
) -> None:
    result, output = scratch

    assert result["model"] == "churn"
    assert result["kind"] == "torch_mlp"
    assert result["fine_tune"] is False
    assert result["rows"] == {"train": 1600, "validation": 400, "holdout": 0}
    assert result["holdout"] is None
    assert result["validation"]["n"] == 400
    assert result["validation"]["accuracy"] > 0.6
    assert result["validation"]["accuracy"] > max(result["validation"]["support"].values()) / 400
    assert 1 <= result["best_epoch"] <= result["epochs_run"] == len(result["history"]) <= 8
    assert {"val_precision", "val_recall"} <= set(result["history"][0])
    assert json.loads((output / "metrics.json").read_text()) == result
    history = json.loads((output / "history.json").read_text())
    assert history == {"epochs": result["history"], "best_epoch": result["best_epoch"]}
    for name in ("training_curve.png", "confusion_matrix.png"):
        assert (output / name).read_bytes().startswith(PNG_MAGIC)
    assert result["model_dir"] == str(output / "model")
    saved = load_classifier(output / "model")
    assert saved.model_cfg.training.epochs == 8
    assert saved.model_cfg.training.learning_rate == 0.005


def test_fine_tuning_continues_from_a_saved_model_on_a_split_dataset(
    cfg: ModelConfig,
    scratch: tuple[dict, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, _ = scratch
    traffic(cfg).to_parquet(tmp_path / "traffic.parquet")

    with caplog.at_level(logging.INFO, logger="relearn.training.torch_mlp"):
        result = train_from_dataset(
            tmp_path / "traffic.parquet",
            CONFIG_FILE,
            tmp_path / "tuned",
            fine_tune=True,
            model_path=Path(first["model_dir"]),
            epochs=2,
        )

    assert result["fine_tune"] is True
    assert result["rows"] == {"train": 300, "validation": 300, "holdout": 300}
    assert result["holdout"]["n"] == 300
    assert result["holdout"]["accuracy"] > 0.6
    fine_tune_lr = cfg.training.learning_rate * cfg.training.fine_tune_lr_factor
    assert "fine-tuning churn: 300 rows, 300 validation rows, up to 2 epochs, " in caplog.text
    assert f"learning rate {fine_tune_lr:g}" in caplog.text
    before, after = weights(first["model_dir"]), weights(result["model_dir"])
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_training_in_batches_checkpoints_after_each(dataset: Path, tmp_path: Path) -> None:
    result = train_from_dataset(dataset, CONFIG_FILE, tmp_path, epochs=2, batches=3)

    assert result["batches"] == 3
    assert [entry["epoch"] for entry in result["history"]] == [1, 2, 3]
    assert sum(entry["rows"] for entry in result["history"]) == result["rows"]["train"]
    assert {"train_loss", "val_f1", "val_accuracy", "seconds"} <= set(result["history"][-1])
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert checkpoints == ["batch_001", "batch_002", "batch_003"]
    first, last = weights(tmp_path / "checkpoints" / "batch_001"), weights(result["model_dir"])
    assert any(not torch.equal(first[k], last[k]) for k in first), "later batches changed it"
    assert all(
        torch.equal(weights(tmp_path / "checkpoints" / "batch_003")[k], last[k]) for k in last
    )


def test_run_train_prints_one_json_object(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(
        "--dataset",
        str(dataset),
        "--output-dir",
        str(tmp_path / "out"),
        "--fine-tune",
        "no",
        "--epochs",
        "2",
        "--random_seed",
        "3",
    )

    assert run_train(args) == 0

    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    assert result["epochs_run"] <= 2
    assert result == json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert load_classifier(tmp_path / "out" / "model").model_cfg.training.random_seed == 3


def test_a_csv_dataset_works_too(dataset: Path, tmp_path: Path) -> None:
    pd.read_parquet(dataset).to_csv(tmp_path / "churn.csv", index=False)

    result = train_from_dataset(
        tmp_path / "churn.csv", CONFIG_FILE, tmp_path / "out", epochs=3, learning_rate=0.005
    )

    assert result["rows"]["train"] == 1600
    assert result["validation"]["accuracy"] > 0.6


def test_fine_tuning_needs_a_matching_saved_model(
    cfg: ModelConfig, dataset: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="fine-tuning needs model_path"):
        train_from_dataset(dataset, CONFIG_FILE, tmp_path / "out", fine_tune=True)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        train_from_dataset(
            dataset, CONFIG_FILE, tmp_path / "out", fine_tune=True, model_path=tmp_path / "none"
        )
    frame = pd.read_parquet(dataset)
    sklearn = new_classifier(cfg.model_copy(update={"kind": ModelKind.SKLEARN_LOGREG}))
    sklearn.fit(frame, frame[cfg.label].tolist())
    sklearn.save(tmp_path / "sklearn")
    with pytest.raises(ValueError, match=r"does not match model 'churn'.*different kind"):
        train_from_dataset(
            dataset, CONFIG_FILE, tmp_path / "out", fine_tune=True, model_path=tmp_path / "sklearn"
        )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda f: f.drop(columns="contract"), r"missing column\(s\) \['contract'\]"),
        (lambda f: f.drop(columns="churned"), r"missing column\(s\) \['churned'\]"),
        (
            lambda f: f.assign(churned=["maybe", *f["churned"][1:]]),
            r"column 'churned' has unknown label\(s\) \['maybe'\]",
        ),
        (lambda f: f.assign(split="test"), r"column 'split' has unknown value\(s\) \['test'\]"),
        (lambda f: f.assign(split="train"), "no validation rows"),
    ],
    ids=["feature", "label", "unknown-label", "unknown-split", "no-validation"],
)
def test_a_bad_dataset_is_named_in_the_error(
    change, error: str, dataset: Path, tmp_path: Path
) -> None:
    path = tmp_path / "bad.parquet"
    change(pd.read_parquet(dataset)).to_parquet(path)

    with pytest.raises(ValueError, match=error) as raised:
        train_from_dataset(path, CONFIG_FILE, tmp_path / "out")

    assert str(path) in str(raised.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("column", "value", "error"),
    [
        ("monthly_charges", "abc", "row 42, column 'monthly_charges': 'abc' is not a number"),
        ("tenure_months", None, "row 42, column 'tenure_months': empty, and the feature is not"),
        ("support_calls", "inf", "row 42, column 'support_calls': inf is not finite"),
    ],
    ids=["not-a-number", "null", "infinite"],
)
def test_a_bad_cell_is_named_by_its_row_in_the_file(
    column: str, value: str | None, error: str, dataset: Path, tmp_path: Path
) -> None:
    """The row a user finds in the file (1 = the first data row), as bootstrap names it, not
    a position in the training split drawn from it."""
    frame = pd.read_parquet(dataset)
    frame[column] = frame[column].astype(object)
    frame.loc[41, column] = value
    frame.to_csv(tmp_path / "bad.csv", index=False)

    with pytest.raises(ValueError, match=error) as raised:
        train_from_dataset(tmp_path / "bad.csv", CONFIG_FILE, tmp_path / "out")

    assert str(tmp_path / "bad.csv") in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_missing_files_and_bad_arguments(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(FileNotFoundError, match=r"dataset .*nowhere\.parquet not found"):
        train_from_dataset(tmp_path / "nowhere.parquet", CONFIG_FILE, tmp_path / "out")
    (tmp_path / "data.json").write_text("{}")
    with pytest.raises(ValueError, match=r"unsupported file type '\.json'"):
        train_from_dataset(tmp_path / "data.json", CONFIG_FILE, tmp_path / "out")
    with pytest.raises(ValueError, match="epochs"):
        train_from_dataset(dataset, CONFIG_FILE, tmp_path / "out", epochs=0)
    with pytest.raises(ValueError, match="unknown model 'fraud'"):
        train_from_dataset(dataset, CONFIG_FILE, tmp_path / "out", model="fraud")

    args = parse("--dataset", str(dataset), "--output_dir", str(tmp_path), "--fine_tune", "1")
    assert run_train(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "relearn train: fine-tuning needs model_path" in captured.err


def test_argument_spellings_and_the_parent_config_option() -> None:
    assert parse("--dataset", "d.csv", "--output_dir", "o").fine_tune is False
    assert parse("--dataset", "d.csv", "--output_dir", "o", "--fine-tune").fine_tune is True
    for value, expected in (("true", True), ("YES", True), ("0", False), ("false", False)):
        args = parse("--dataset", "d", "--output-dir", "o", "--fine_tune", value)
        assert args.fine_tune is expected
    args = parse(
        "--dataset", "d", "--output-dir", "o", "--model-path", "m", "--learning-rate", "0.01"
    )
    assert (args.model_path, args.learning_rate, args.output_dir) == (Path("m"), 0.01, Path("o"))
    with pytest.raises(SystemExit):
        parse("--dataset", "d", "--output-dir", "o", "--fine_tune", "maybe")

    # As a subcommand: a --config before the subcommand must survive the subparser's defaults.
    parent = argparse.ArgumentParser()
    parent.add_argument("--config")
    add_train_arguments(parent.add_subparsers().add_parser("train"))
    options = ["--dataset", "d", "--output-dir", "o"]
    assert parent.parse_args(["--config", "a.yaml", "train", *options]).config == "a.yaml"
    assert parent.parse_args(["train", "--config", "b.yaml", *options]).config == Path("b.yaml")
    assert parent.parse_args(["train", *options]).config is None
