"""Build or load a classifier of any kind: the one place that knows every kind.

Kept apart from the base class (``relearn.training.classifier``) so the kinds can import the
base without the base importing them back.
"""

from __future__ import annotations

from pathlib import Path

from relearn.config import ModelConfig, ModelKind
from relearn.training.classifier import TabularClassifier, read_meta


def _classifier_class(kind: ModelKind) -> type[TabularClassifier]:
    # Deliberately lazy: memory per step. Each kind's module (and its libraries) is imported
    # when a classifier of that kind is built or loaded, so the step process of a
    # scikit-learn model never loads torch (about 230 MB resident).
    match kind:
        case ModelKind.TORCH_MLP:
            # Lazy, as above.
            from relearn.training.torch_mlp import TorchMLPClassifier

            return TorchMLPClassifier
        case ModelKind.SKLEARN_LOGREG:
            # Lazy, as above.
            from relearn.training.sklearn_model import SklearnLogRegClassifier

            return SklearnLogRegClassifier
        case ModelKind.SKLEARN_HGB:
            # Lazy, as above.
            from relearn.training.sklearn_hgb import SklearnHGBClassifier

            return SklearnHGBClassifier
        case ModelKind.SKLEARN_IMPORTED:
            # Lazy, as above.
            from relearn.training.sklearn_imported import ImportedSklearnClassifier

            return ImportedSklearnClassifier
    raise ValueError(f"unsupported model kind '{kind}'")


def new_classifier(model_cfg: ModelConfig) -> TabularClassifier:
    """An unfitted classifier of the configured kind."""
    if model_cfg.kind is ModelKind.SKLEARN_IMPORTED:
        raise ValueError(
            f"model '{model_cfg.name}' is of kind {model_cfg.kind}: Relearn cannot train one "
            f"from nothing; import it with `relearn bootstrap --model {model_cfg.name} "
            "--from-mlflow URI --reference FILE`"
        )
    return _classifier_class(model_cfg.kind)(model_cfg)


def load_classifier(directory: Path | str) -> TabularClassifier:
    """The classifier saved in ``directory``, whatever its kind."""
    return _classifier_class(read_meta(Path(directory)).kind).load(directory)
