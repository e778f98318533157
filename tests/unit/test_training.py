"""Preprocessing, both classifier kinds, save/load and the MLflow pyfunc wrapper.

Everything trains on a small synthetic churn frame whose label depends on two features
(``support_calls`` and ``contract``), so a working model must clearly beat the majority rate.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from relearn.config import ModelConfig, load_config
from relearn.evaluation import classification_metrics, log_loss
from relearn.training.calibration import Calibration
from relearn.training.classifier import validation_metrics
from relearn.training.factory import load_classifier, new_classifier
from relearn.training.preprocessing import FeatureSchemaError, build_preprocessor, feature_frame
from relearn.training.pyfunc import log_pyfunc_model, model_signature
from relearn.training.sklearn_model import SklearnLogRegClassifier
from relearn.training.torch_mlp import TorchMLPClassifier

CONFIG_FILE = Path(__file__).resolve().parents[2] / "relearn.yaml"
N_TRAIN = 480


def churn_config(**changes: object) -> ModelConfig:
    """The example ``churn`` model; ``training=`` entries are merged, others replaced."""
    data = load_config(CONFIG_FILE).model("churn").model_dump()
    data["training"] = {**data["training"], **changes.pop("training", {})}
    return ModelConfig.model_validate({**data, **changes})


def synthetic(cfg: ModelConfig, n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """Features drawn uniformly from the schema; churn iff many support calls for the contract."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            f.name: rng.choice(f.categories, n) if f.categories else rng.uniform(f.min, f.max, n)
            for f in cfg.features
        }
    )
    churned = frame["support_calls"] / 25 + 2 * (frame["contract"] == "monthly") > 3
    return frame, np.where(churned, "yes", "no").tolist()


@pytest.fixture(scope="module")
def cfg() -> ModelConfig:
    return churn_config(training={"epochs": 30, "learning_rate": 0.01})


@pytest.fixture(scope="module")
def data(cfg: ModelConfig) -> tuple[pd.DataFrame, list[str], pd.DataFrame, list[str]]:
    frame, labels = synthetic(cfg)
    return frame[:N_TRAIN], labels[:N_TRAIN], frame[N_TRAIN:], labels[N_TRAIN:]


@pytest.fixture(scope="module")
def trained(cfg: ModelConfig, data: tuple) -> TorchMLPClassifier:
    train, y, val, val_y = data
    classifier = TorchMLPClassifier(cfg)
    classifier.fit(train, y, val_frame=val, val_labels=val_y)
    return classifier


def majority_rate(labels: list[str]) -> float:
    return max(labels.count(label) for label in set(labels)) / len(labels)


# --- preprocessing ---------------------------------------------------------------------------


def test_feature_frame_selects_orders_and_coerces(cfg: ModelConfig) -> None:
    frame, _ = synthetic(cfg, n=4)
    shuffled = frame[list(reversed(frame.columns))].assign(extra=1)
    shuffled["tenure_months"] = ["1", "2.5", "3", "4"]
    shuffled["region"] = shuffled["region"].astype("category")

    result = feature_frame(shuffled, cfg)

    assert list(result.columns) == cfg.feature_names
    assert result["tenure_months"].tolist() == [1.0, 2.5, 3.0, 4.0]
    assert result["tenure_months"].dtype == np.float64
    assert result["region"].dtype == object
    assert result["region"].tolist() == frame["region"].tolist()


def test_feature_frame_shares_one_string_per_category(cfg: ModelConfig) -> None:
    # A retraining window holds 700k rows of a few categories: one str object each, not 700k.
    frame, _ = synthetic(cfg, n=300)
    frame["contract"] = pd.Series(["monthly", "yearly", "two_year"] * 100, dtype="str")
    frame["region"] = pd.Series([True, "1", 1] * 100, dtype=object)  # not strings: as before

    result = feature_frame(frame, cfg)

    contract = result["contract"]
    assert contract.dtype == object
    assert contract.tolist() == ["monthly", "yearly", "two_year"] * 100
    assert len({id(value) for value in contract}) == 3
    assert result["region"].tolist()[:3] == ["True", "1", "1"]


def test_feature_frame_names_a_missing_column(cfg: ModelConfig) -> None:
    frame, _ = synthetic(cfg, n=3)
    with pytest.raises(FeatureSchemaError, match=r"missing feature column\(s\) \['contract'\]"):
        feature_frame(frame.drop(columns="contract"), cfg)


def test_feature_frame_names_a_non_numeric_value_and_its_row(cfg: ModelConfig) -> None:
    frame, _ = synthetic(cfg, n=5)
    frame["tenure_months"] = frame["tenure_months"].astype(object)
    frame.loc[3, "tenure_months"] = "abc"
    with pytest.raises(
        FeatureSchemaError, match="feature 'tenure_months' must be numeric, got 'abc' in row 3"
    ):
        feature_frame(frame, cfg)


def test_feature_frame_rejects_nulls_unless_nullable(cfg: ModelConfig) -> None:
    frame, labels = synthetic(cfg, n=50)
    frame.loc[2, "support_calls"] = np.nan
    frame.loc[4, "region"] = None
    with pytest.raises(FeatureSchemaError, match=r"'support_calls' is not nullable.*row 2"):
        feature_frame(frame, cfg)

    features = [
        {**f.model_dump(), "nullable": f.name in ("support_calls", "region")} for f in cfg.features
    ]
    nullable = churn_config(features=features, training={"epochs": 2})
    coerced = feature_frame(frame, nullable)
    assert np.isnan(coerced.loc[2, "support_calls"])
    assert pd.isna(coerced.loc[4, "region"])
    classifier = new_classifier(nullable)
    classifier.fit(frame, labels)
    assert np.isfinite(classifier.predict_proba(frame)).all()


def test_preprocessor_is_dense_float32_with_fixed_one_hot_width(cfg: ModelConfig) -> None:
    frame, _ = synthetic(cfg, n=20)
    preprocessor = build_preprocessor(cfg).fit(feature_frame(frame, cfg))
    unseen = frame[:1].assign(contract="weekly")

    matrix = preprocessor.transform(feature_frame(unseen, cfg))

    assert isinstance(matrix, np.ndarray)
    assert matrix.dtype == np.float32
    assert matrix.shape == (1, 4 + 3 + 4)  # 4 numeric, contract (3) and region (4) one-hot
    names = list(preprocessor.get_feature_names_out())
    contract_columns = [i for i, name in enumerate(names) if "contract_" in name]
    assert matrix[0, contract_columns].tolist() == [0.0, 0.0, 0.0]
    scaled = preprocessor.transform(feature_frame(frame, cfg))[:, :4]
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-6)


# --- torch MLP -------------------------------------------------------------------------------


def test_torch_fit_is_deterministic_and_leaves_the_global_rng_alone(
    cfg: ModelConfig, data: tuple
) -> None:
    train, y, val, val_y = data

    def fit(seed: int) -> tuple[TorchMLPClassifier, list[dict[str, float]]]:
        classifier = TorchMLPClassifier(churn_config(training={"random_seed": seed}))
        history = classifier.fit(train, y, val_frame=val, val_labels=val_y, epochs=3)
        return classifier, [{k: v for k, v in e.items() if k != "seconds"} for e in history.epochs]

    first, first_history = fit(42)
    torch.rand(100)  # whatever else used torch's global RNG in between must not matter
    rng_state = torch.get_rng_state()
    second, second_history = fit(42)
    other, _ = fit(7)

    assert torch.equal(rng_state, torch.get_rng_state())
    assert np.array_equal(first.predict_proba(val), second.predict_proba(val))
    assert first_history == second_history
    assert not np.array_equal(first.predict_proba(val), other.predict_proba(val))


def test_torch_learns_and_returns_probabilities_in_class_order(
    trained: TorchMLPClassifier, data: tuple
) -> None:
    _, _, val, val_y = data
    proba = trained.predict_proba(val)
    accuracy = np.mean(np.array(trained.classes)[proba.argmax(axis=1)] == np.array(val_y))

    assert accuracy > majority_rate(val_y) + 0.2
    assert proba.shape == (len(val), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    obvious_churner = val[:1].assign(support_calls=99.0, contract="monthly")
    assert trained.predict_proba(obvious_churner)[0, trained.classes.index("yes")] > 0.9


def test_probability_columns_follow_the_configured_class_order(data: tuple) -> None:
    train, y, _, _ = data
    reversed_cfg = churn_config(
        classes=["yes", "no"], training={"epochs": 30, "learning_rate": 0.01}
    )
    classifier = new_classifier(reversed_cfg)
    classifier.fit(train, y)
    churner = train[:1].assign(support_calls=99.0, contract="monthly")
    loyal = train[:1].assign(support_calls=1.0, contract="two_year")

    assert classifier.classes == ["yes", "no"]
    assert classifier.predict_proba(churner)[0].argmax() == 0
    assert classifier.predict_proba(loyal)[0].argmax() == 1


def test_torch_logs_one_info_line_per_epoch(
    cfg: ModelConfig, data: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    train, y, val, val_y = data
    classifier = TorchMLPClassifier(cfg)
    with caplog.at_level(logging.INFO, logger="relearn.training.torch_mlp"):
        history = classifier.fit(train, y, val_frame=val, val_labels=val_y, epochs=4)

    epoch_lines = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    assert len(epoch_lines) == len(history.epochs) == 4
    pattern = r"churn epoch 4/4: train_loss \d\.\d{4}, val_loss \d\.\d{4}, .* val_f1 .*s\)"
    assert re.fullmatch(pattern, epoch_lines[-1])


def test_early_stopping_keeps_the_best_epoch(data: tuple) -> None:
    train, _, val, _ = data
    rng = np.random.default_rng(1)
    noise, val_noise = rng.choice(["no", "yes"], len(train)), rng.choice(["no", "yes"], len(val))
    cfg = churn_config(training={"epochs": 100, "learning_rate": 0.05, "patience": 2})
    classifier = TorchMLPClassifier(cfg)

    history = classifier.fit(train, noise, val_frame=val, val_labels=val_noise)

    epochs = len(history.epochs)
    assert epochs < 100
    assert history.best_epoch == epochs - 2
    best_loss = history.epochs[history.best_epoch - 1]["val_loss"]
    assert all(e["val_loss"] >= best_loss for e in history.epochs)
    # The history scores the network itself: compare without the calibration fitted after it.
    classifier.calibration = Calibration()
    restored = log_loss(list(val_noise), classifier.predict_proba(val), classifier.classes)
    assert restored == pytest.approx(best_loss, rel=1e-9)


def test_fit_again_fine_tunes_from_current_weights_with_the_same_preprocessor(
    cfg: ModelConfig, data: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    train, y, val, _ = data
    fresh_first_loss = TorchMLPClassifier(cfg).fit(train, y, epochs=1).epochs[0]["train_loss"]
    classifier = TorchMLPClassifier(cfg)
    classifier.fit(train, y)
    preprocessor = classifier.preprocessor
    scaler_mean = preprocessor.named_transformers_["numeric"]["scale"].mean_.copy()
    before = classifier.predict_proba(val)

    with caplog.at_level(logging.INFO, logger="relearn.training.torch_mlp"):
        tuned_loss = classifier.fit(train, y, epochs=1).epochs[0]["train_loss"]
        classifier.fit(train.assign(tenure_months=train["tenure_months"] + 500), y, epochs=1)

    assert tuned_loss < fresh_first_loss - 0.2
    assert classifier.preprocessor is preprocessor
    np.testing.assert_array_equal(
        preprocessor.named_transformers_["numeric"]["scale"].mean_, scaler_mean
    )
    assert not np.allclose(classifier.predict_proba(val), before)
    fine_tune_lr = cfg.training.learning_rate * cfg.training.fine_tune_lr_factor
    assert f"fine-tuning churn: {N_TRAIN} rows" in caplog.text
    assert f"learning rate {fine_tune_lr:g}" in caplog.text


def test_unknown_labels_and_mismatched_lengths_are_rejected(cfg: ModelConfig, data: tuple) -> None:
    train, y, val, val_y = data
    classifier = TorchMLPClassifier(cfg)
    with pytest.raises(ValueError, match=r"unknown label\(s\) \['maybe'\]"):
        classifier.fit(train, [*y[:-1], "maybe"])
    with pytest.raises(ValueError, match=r"unknown label\(s\) \['perhaps'\]"):
        classifier.fit(train, y, val_frame=val, val_labels=[*val_y[:-1], "perhaps"])
    with pytest.raises(ValueError, match="479 labels"):
        classifier.fit(train, y[:-1])
    with pytest.raises(ValueError, match="given together"):
        classifier.fit(train, y, val_frame=val)
    assert not classifier.is_fitted
    with pytest.raises(RuntimeError, match="not fitted"):
        classifier.predict_proba(val)


def test_validation_metrics_are_the_gate_definitions(
    trained: TorchMLPClassifier, data: tuple
) -> None:
    _, _, val, val_y = data
    proba = trained.predict_proba(val)
    metrics = classification_metrics(val_y, proba, trained.classes)

    assert validation_metrics(val_y, proba, trained.classes) == {
        "val_loss": metrics["log_loss"],
        "val_accuracy": metrics["accuracy"],
        "val_f1": metrics["f1_macro"],
        "val_precision": metrics["precision_macro"],
        "val_recall": metrics["recall_macro"],
    }
    assert 0.5 < metrics["precision_macro"] <= 1
    assert 0.5 < metrics["recall_macro"] <= 1


def test_fit_batches_continues_training_batch_by_batch(
    cfg: ModelConfig, data: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    train, y, val, val_y = data
    classifier = TorchMLPClassifier(cfg)
    snapshots: list[dict[str, torch.Tensor]] = []

    def batches():  # lazily, so each snapshot shows the weights after the previous batch
        for start in range(0, N_TRAIN, 160):
            if classifier.network is not None:
                snapshots.append({k: v.clone() for k, v in classifier.network.state_dict().items()})
            yield train[start : start + 160], y[start : start + 160]

    with caplog.at_level(logging.INFO, logger="relearn.training.classifier"):
        results = classifier.fit_batches(
            batches(), val_frame=val, val_labels=val_y, epochs_per_batch=3, learning_rate=0.01
        )
    snapshots.append(classifier.network.state_dict())

    assert [r["batch"] for r in results] == [1, 2, 3]
    assert [r["rows"] for r in results] == [160, 160, 160]
    assert set(results[0]) == {
        "batch",
        "rows",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "val_f1",
        "val_precision",
        "val_recall",
        "seconds",
    }
    assert results[-1]["val_accuracy"] > results[0]["val_accuracy"] + 0.1
    assert results[-1]["val_accuracy"] > majority_rate(val_y) + 0.2
    final = classifier.predict_proba(val)
    assert results[-1]["val_loss"] == pytest.approx(log_loss(val_y, final, classifier.classes))
    assert len(snapshots) == 3  # after batches 1, 2 and 3
    for before, after in itertools.pairwise(snapshots):
        assert any(not torch.equal(before[k], after[k]) for k in before)
    batch_lines = [r.getMessage() for r in caplog.records if " batch " in r.getMessage()]
    assert len(batch_lines) == 3
    assert batch_lines[0].startswith("churn batch 1: 160 rows, train_loss ")


def test_fit_batches_without_validation_and_its_errors(cfg: ModelConfig, data: tuple) -> None:
    train, y, val, _ = data
    classifier = TorchMLPClassifier(cfg)

    results = classifier.fit_batches([(train[:240], y[:240]), (train[240:], y[240:])])

    assert [set(r) for r in results] == [{"batch", "rows", "train_loss", "seconds"}] * 2
    with pytest.raises(ValueError, match="given together"):
        classifier.fit_batches([(train, y)], val_frame=val)
    with pytest.raises(ValueError, match="no batches"):
        classifier.fit_batches(iter([]))


def test_fit_batches_refits_the_sklearn_kind_on_everything_seen(data: tuple) -> None:
    train, y, val, val_y = data
    batches = [(train[i : i + 160], y[i : i + 160]) for i in range(0, N_TRAIN, 160)]
    classifier = new_classifier(churn_config(kind="sklearn_logreg"))

    results = classifier.fit_batches(batches, val_frame=val, val_labels=val_y)

    reference = new_classifier(churn_config(kind="sklearn_logreg"))
    reference.fit(train.reset_index(drop=True), y, val_frame=val, val_labels=val_y)
    assert [r["rows"] for r in results] == [160, 160, 160]
    np.testing.assert_allclose(classifier.predict_proba(val), reference.predict_proba(val))
    assert results[-1]["val_accuracy"] > majority_rate(val_y) + 0.1


# --- save / load and the scikit-learn kind ---------------------------------------------------


@pytest.mark.parametrize("kind", ["torch_mlp", "sklearn_logreg"])
def test_save_and_load_round_trip(kind: str, data: tuple, tmp_path: Path) -> None:
    train, y, val, val_y = data
    cfg = churn_config(kind=kind, training={"epochs": 3})
    classifier = new_classifier(cfg)
    classifier.fit(train, y, val_frame=val, val_labels=val_y)

    classifier.save(tmp_path / "model")
    loaded = load_classifier(tmp_path / "model")

    assert type(loaded) is type(classifier)
    saved_fields = {"name", "kind", "label", "classes", "features", "training"}
    assert loaded.model_cfg.model_dump(include=saved_fields) == cfg.model_dump(include=saved_fields)
    assert np.array_equal(loaded.predict_proba(val), classifier.predict_proba(val))
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["kind"] == kind
    assert meta["classes"] == ["no", "yes"]
    assert [f["name"] for f in meta["features"]] == cfg.feature_names
    assert meta["training"]["hidden_units"] == cfg.training.hidden_units
    other = SklearnLogRegClassifier if kind == "torch_mlp" else TorchMLPClassifier
    with pytest.raises(ValueError, match=f"holds a {kind} classifier"):
        other.load(tmp_path / "model")


def test_sklearn_kind_behind_the_same_interface(data: tuple) -> None:
    train, y, val, val_y = data
    classifier = new_classifier(churn_config(kind="sklearn_logreg"))

    history = classifier.fit(train, y, val_frame=val, val_labels=val_y)
    proba = classifier.predict_proba(val)

    assert isinstance(classifier, SklearnLogRegClassifier)
    assert history.best_epoch == 1
    assert [e["epoch"] for e in history.epochs] == [1]
    assert set(history.epochs[0]) == {
        "epoch",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "val_f1",
        "val_precision",
        "val_recall",
        "seconds",
    }
    assert history.epochs[0]["val_accuracy"] > majority_rate(val_y) + 0.1
    assert proba.shape == (len(val), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def test_sklearn_gives_a_zero_column_to_a_class_missing_from_training() -> None:
    three = churn_config(
        kind="sklearn_logreg", classes=["no", "yes", "maybe"], simulation={"class_weights": None}
    )
    frame, labels = synthetic(three, n=100)
    classifier = new_classifier(three)
    classifier.fit(frame, labels)

    proba = classifier.predict_proba(frame)

    assert proba.shape == (100, 3)
    assert (proba[:, 2] == 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


# --- MLflow pyfunc ---------------------------------------------------------------------------


def test_signature_follows_the_feature_schema(cfg: ModelConfig) -> None:
    signature = model_signature(cfg)

    inputs = {spec.name: spec.type.name for spec in signature.inputs.inputs}
    assert list(inputs) == cfg.feature_names
    assert inputs["tenure_months"] == "double"
    assert inputs["contract"] == "string"
    assert [(s.name, s.type.name) for s in signature.outputs.inputs] == [
        ("no", "double"),
        ("yes", "double"),
    ]


def test_pyfunc_logs_registers_and_loads_in_another_process(
    trained: TorchMLPClassifier, cfg: ModelConfig, data: tuple, tmp_path: Path
) -> None:
    _, _, val, _ = data
    tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(tracking_uri)
    try:
        experiment = mlflow.create_experiment("relearn-test", artifact_location=tmp_path.as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = log_pyfunc_model(trained, cfg, registered_model_name="churn")
        in_process = mlflow.pyfunc.load_model(info.model_uri).predict(feature_frame(val, cfg))
    finally:
        mlflow.set_tracking_uri(None)

    expected = trained.predict_proba(val)
    assert info.registered_model_version == 1
    assert list(in_process.columns) == ["no", "yes"]
    assert np.array_equal(in_process.to_numpy(), expected)

    val.to_parquet(tmp_path / "input.parquet")
    script = (
        "import sys, mlflow, numpy, pandas\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "proba = model.predict(pandas.read_parquet(sys.argv[2]))\n"
        "assert list(proba.columns) == ['no', 'yes'], proba.columns\n"
        "numpy.save(sys.argv[3], proba.to_numpy())\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            info.model_uri,
            tmp_path / "input.parquet",
            tmp_path / "p.npy",
        ],
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
        check=True,
        timeout=120,
    )
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, rtol=0, atol=1e-12)
