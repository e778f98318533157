"""The MLflow pyfunc flavour of a Relearn classifier, as the registry stores and serves it.

The pickled ``RelearnPyfuncModel`` holds no state: it refers to this module by name and loads
the classifier directory logged next to it, so any process whose environment has the
``relearn`` package installed can ``mlflow.pyfunc.load_model`` it without ``code_paths``.
"""

from __future__ import annotations

import logging
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, Schema

from relearn.config import FeatureType, ModelKind
from relearn.training.factory import load_classifier
from relearn.training.preprocessing import feature_frame

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

    from relearn.config import Feature, ModelConfig
    from relearn.training.classifier import TabularClassifier

log = logging.getLogger(__name__)

CLASSIFIER_ARTIFACT = "classifier"


class RelearnPyfuncModel(mlflow.pyfunc.PythonModel):
    """Features in, one probability column per class out (columns named by class label)."""

    def __init__(self) -> None:
        self.classifier: TabularClassifier | None = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.classifier = load_classifier(context.artifacts[CLASSIFIER_ARTIFACT])

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        if self.classifier is None:
            raise RuntimeError("RelearnPyfuncModel.predict called before load_context")
        features = feature_frame(model_input, self.classifier.model_cfg)
        return pd.DataFrame(
            self.classifier.predict_proba(features),
            columns=self.classifier.classes,
            index=features.index,
        )


def model_signature(model_cfg: ModelConfig) -> ModelSignature:
    """Numeric features as doubles, categoricals as strings; one double output per class."""
    inputs = Schema(
        [
            ColSpec(
                DataType.double if f.type is FeatureType.NUMERIC else DataType.string,
                f.name,
                required=not f.nullable,
            )
            for f in model_cfg.features
        ]
    )
    outputs = Schema([ColSpec(DataType.double, label) for label in model_cfg.classes])
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(model_cfg: ModelConfig, rows: int = 2) -> pd.DataFrame:
    """Valid rows built from the schema alone: numeric mid-range values, cycled categories."""
    return pd.DataFrame(
        {f.name: [_example_value(f, row) for row in range(rows)] for f in model_cfg.features}
    )


def _example_value(feature: Feature, row: int) -> float | str:
    if feature.type is FeatureType.CATEGORICAL:
        return feature.categories[row % len(feature.categories)]
    bounds = [b for b in (feature.min, feature.max) if b is not None]
    return sum(bounds) / len(bounds) if bounds else 0.0


def pip_requirements(model_cfg: ModelConfig) -> list[str]:
    """What the model needs, from this environment's versions.

    Stated explicitly because MLflow's inference runs the model in a subprocess to watch its
    imports, which costs seconds per logged model.
    """
    kind = "torch" if model_cfg.kind is ModelKind.TORCH_MLP else "scikit-learn"
    packages = dict.fromkeys(("relearn", "mlflow", "pandas", "scikit-learn", kind))
    return [f"{package}=={version(package)}" for package in packages]


class _PickleNotice(logging.Filter):
    """MLflow warns on every ``log_model`` that a model given as a Python object is
    cloudpickled. Ours is a small wrapper class of this package, and the classifier itself
    travels as artifact files: the warning would only repeat in every run's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passing a Python object as `python_model`")


def log_pyfunc_model(
    classifier: TabularClassifier,
    model_cfg: ModelConfig,
    *,
    name: str = "model",
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Log ``classifier`` as a pyfunc model in the active MLflow run (and register it).

    :raises ValueError: ``model_cfg`` disagrees with the classifier on classes or features,
        which would make the logged signature lie about the model.
    """
    if (classifier.classes, classifier.model_cfg.features) != (
        model_cfg.classes,
        model_cfg.features,
    ):
        raise ValueError(
            f"classifier for '{classifier.model_cfg.name}' does not match the configuration "
            f"of '{model_cfg.name}' (classes or features differ)"
        )
    with tempfile.TemporaryDirectory(prefix="relearn-classifier-") as tmp:
        directory = Path(tmp) / CLASSIFIER_ARTIFACT
        classifier.save(directory)
        notice, mlflow_log = _PickleNotice(), logging.getLogger("mlflow.pyfunc")
        mlflow_log.addFilter(notice)
        try:
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=RelearnPyfuncModel(),
                artifacts={CLASSIFIER_ARTIFACT: str(directory)},
                signature=model_signature(model_cfg),
                input_example=input_example(model_cfg),
                registered_model_name=registered_model_name,
                pip_requirements=pip_requirements(classifier.model_cfg),
            )
        finally:
            mlflow_log.removeFilter(notice)
    log.info(
        "logged %s classifier %s as %s (registered version: %s)",
        model_cfg.kind,
        model_cfg.name,
        info.model_uri,
        info.registered_model_version,
    )
    return info
