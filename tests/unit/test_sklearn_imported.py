"""``ImportedSklearnClassifier``: serving, refitting and saving an estimator trained elsewhere."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from relearn.config import ModelConfig, ModelKind
from relearn.onboarding.imported import ModelImportError, check_inputs
from relearn.training.factory import load_classifier, new_classifier
from relearn.training.sklearn_imported import ImportedSklearnClassifier, UnsupportedEstimatorError


def _cfg(classes=("no", "yes"), **overrides) -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "name": "imported",
            "label": "label",
            "classes": list(classes),
            "features": [
                {"name": "x", "type": "numeric"},
                {"name": "color", "type": "categorical", "categories": ["red", "blue"]},
            ],
            "training": {"reference_rows": 50},
            **overrides,
        }
    )


def _frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    color = rng.choice(["red", "blue"], size=rows)
    label = np.where(x + (color == "red") > 0.5, "yes", "no")
    return pd.DataFrame({"x": x, "color": color, "label": label})


def _pipeline() -> Pipeline:
    return Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [("x", "passthrough", ["x"]), ("color", OneHotEncoder(), ["color"])]
                ),
            ),
            ("classify", LogisticRegression()),
        ]
    )


def test_probabilities_follow_the_configured_class_order():
    frame = _frame()
    pipeline = _pipeline().fit(frame[["x", "color"]], frame["label"])
    classifier = ImportedSklearnClassifier.wrap(_cfg(classes=("yes", "no")), pipeline, frame)
    proba = classifier.predict_proba(frame)
    # Calibrated on the reference rows (temperature scaling keeps the column order).
    raw = pipeline.predict_proba(frame[["x", "color"]])[:, ::-1]
    assert proba[:, 0] == pytest.approx(classifier.calibration.apply(raw)[:, 0])
    assert classifier.calibration.rows == 50
    assert classifier.model_cfg.kind is ModelKind.SKLEARN_IMPORTED


def test_a_refit_is_a_clone_fitted_on_the_rows_plus_as_many_reference_rows():
    frame = _frame()
    knn = KNeighborsClassifier(n_neighbors=7).fit(frame[["x"]], frame["label"])
    cfg = _cfg(features=[{"name": "x", "type": "numeric"}])
    classifier = ImportedSklearnClassifier.wrap(cfg, knn, frame)
    assert len(classifier.reference_sample) == 50  # training.reference_rows
    new = _frame(rows=30, seed=1)
    classifier.fit(new, new["label"].tolist())
    assert classifier.estimator is not knn
    assert classifier.estimator.get_params() == knn.get_params()
    assert classifier.estimator.n_samples_fit_ == 30 + 30
    many = _frame(rows=120, seed=2)
    classifier.fit(many, many["label"].tolist())
    assert classifier.estimator.n_samples_fit_ == 120 + 50  # every kept reference row


def test_integer_labels_stay_integers_through_a_refit():
    frame = _frame()
    codes = (frame["label"] == "yes").astype(int)
    pipeline = _pipeline().fit(frame[["x", "color"]], codes)
    reference = frame.assign(label=codes.astype(str))
    classifier = ImportedSklearnClassifier.wrap(_cfg(classes=("0", "1")), pipeline, reference)
    classifier.fit(reference, reference["label"].tolist())
    assert classifier.estimator.classes_.tolist() == [0, 1]
    assert classifier.predict_proba(reference).shape == (len(reference), 2)


def test_save_and_load_keep_estimator_and_reference_sample(tmp_path):
    frame = _frame()
    # A lambda: pickle cannot save it, cloudpickle (as in MLflow's sklearn flavour) can.
    pipeline = Pipeline(
        [
            ("double", FunctionTransformer(lambda x: x * 2)),
            ("classify", LogisticRegression()),
        ]
    ).fit(frame[["x"]], frame["label"])
    cfg = _cfg(features=[{"name": "x", "type": "numeric"}])
    classifier = ImportedSklearnClassifier.wrap(cfg, pipeline, frame)
    classifier.save(tmp_path / "model")
    loaded = load_classifier(tmp_path / "model")
    assert isinstance(loaded, ImportedSklearnClassifier)
    assert loaded.predict_proba(frame) == pytest.approx(classifier.predict_proba(frame))
    pd.testing.assert_frame_equal(loaded.reference_sample, classifier.reference_sample)


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (LogisticRegression(), "is not fitted"),
        (FunctionTransformer(), "is not a scikit-learn classifier"),
    ],
)
def test_unusable_estimators_are_refused(estimator, message):
    with pytest.raises(UnsupportedEstimatorError, match=message):
        ImportedSklearnClassifier.wrap(_cfg(), estimator, _frame())


def test_other_classes_or_unconfigured_features_are_refused():
    frame = _frame()
    three = frame.assign(label=np.resize(["no", "yes", "maybe"], len(frame)))
    pipeline = _pipeline().fit(three[["x", "color"]], three["label"])
    with pytest.raises(UnsupportedEstimatorError, match=r"predicts classes \['maybe', 'no'"):
        ImportedSklearnClassifier.wrap(_cfg(), pipeline, frame)
    wide = frame.assign(extra=1.0)
    model = LogisticRegression().fit(wide[["x", "extra"]], wide["label"])
    cfg = _cfg(features=[{"name": "x", "type": "numeric"}])
    with pytest.raises(UnsupportedEstimatorError, match=r"reads feature\(s\) \['extra'\]"):
        ImportedSklearnClassifier.wrap(cfg, model, frame)


def test_an_estimator_trained_on_category_codes_is_caught_before_it_serves_garbage():
    frame = _frame()
    coded = frame.assign(color=(frame["color"] == "red").astype(int))
    pipeline = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("x", "passthrough", ["x"]),
                        ("color", OneHotEncoder(handle_unknown="ignore"), ["color"]),
                    ]
                ),
            ),
            ("classify", LogisticRegression()),
        ]
    ).fit(coded[["x", "color"]], coded["label"])
    cfg = _cfg(
        features=[
            {"name": "x", "type": "numeric"},
            {"name": "color", "type": "categorical", "categories": ["0", "1"]},
        ]
    )
    classifier = ImportedSklearnClassifier.wrap(cfg, pipeline, coded)
    with pytest.raises(ModelImportError, match=r"columns whose type changes: \['color'\]"):
        check_inputs(classifier, coded)


def test_relearn_cannot_train_an_imported_kind_from_nothing():
    with pytest.raises(ValueError, match="--from-mlflow URI --reference FILE"):
        new_classifier(_cfg(kind="sklearn_imported"))
