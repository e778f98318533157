"""Typed, validated Relearn configuration: one YAML file describing one or more models.

The file is found through ``RELEARN_CONFIG`` (default ``relearn.yaml`` in the working directory).
Any threshold can be overridden per environment without editing the file:
``RELEARN__<SECTION>__<KEY>=value`` applies to every model, and
``RELEARN__<MODEL_NAME>__<SECTION>__<KEY>=value`` to one model (names upper-cased).
Values are parsed as YAML scalars, so ``RELEARN__TRAINING__EPOCHS=3`` is an int.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import BeforeValidator, Field, ValidationError, model_validator

from relearn.config_groups import (
    ABTestConfig,
    DriftConfig,
    GateConfig,
    HealthConfig,
    RegistryConfig,
    ReinforcementConfig,
    RetentionConfig,
    SimulationConfig,
    StrictModel,
    TrainingConfig,
)
from relearn.store.columns import LOG_COLUMNS, PREDICTION_COLUMNS

DEFAULT_CONFIG_FILE = "relearn.yaml"
# Not usable as a feature or label name: the prediction log's and a producer's batch columns,
# the window's role and the dataset's split would overwrite it in the pipeline's frames.
RESERVED_COLUMNS = frozenset({*LOG_COLUMNS, *PREDICTION_COLUMNS, "role", "split"})
ENV_PREFIX = "RELEARN__"


class ConfigError(ValueError):
    """The configuration file is missing or invalid; the message names the file and field."""


class FeatureType(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class ModelKind(StrEnum):
    TORCH_MLP = "torch_mlp"
    SKLEARN_LOGREG = "sklearn_logreg"
    # A scikit-learn estimator trained elsewhere and imported from MLflow
    # (`relearn bootstrap --from-mlflow`); retraining refits a clone of it.
    SKLEARN_IMPORTED = "sklearn_imported"
    SKLEARN_HGB = "sklearn_hgb"


# HistGradientBoostingClassifier bins a categorical feature's codes into at most this many bins.
HGB_MAX_CATEGORIES = 255


def _integer_as_text(value: Any) -> Any:
    """YAML reads ``classes: [0, 1]`` as numbers; the log and the models hold them as text."""
    return str(value) if type(value) is int else value


# A class or category: text, or an integer written without quotes (a boolean stays an error).
Text = Annotated[str, BeforeValidator(_integer_as_text)]


class Feature(StrictModel):
    """One input column. ``min``/``max`` bound valid numeric values (validation uses them)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    type: FeatureType
    categories: list[Text] = Field(default_factory=list)
    min: float | None = None
    max: float | None = None
    nullable: bool = False

    @model_validator(mode="after")
    def _check_type_fields(self) -> Self:
        if self.type is FeatureType.CATEGORICAL and len(self.categories) < 2:
            raise ValueError(f"categorical feature '{self.name}' needs at least 2 categories")
        if self.type is FeatureType.NUMERIC and self.categories:
            raise ValueError(f"numeric feature '{self.name}' cannot have categories")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"feature '{self.name}': min must be below max")
        return self


class ModelConfig(StrictModel):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")]
    kind: ModelKind = ModelKind.TORCH_MLP
    label: str = "label"
    # A column of the training dataset that orders its rows in time: bootstrapping from a
    # dataset then trains on the past and validates on the most recent rows.
    time_column: str | None = None
    classes: Annotated[list[Text], Field(min_length=2)]
    features: Annotated[list[Feature], Field(min_length=1)]
    training: TrainingConfig = TrainingConfig()
    reinforcement: ReinforcementConfig = ReinforcementConfig()
    gates: GateConfig = GateConfig()
    drift: DriftConfig = DriftConfig()
    abtest: ABTestConfig = ABTestConfig()
    # Demo models only: the simulated world their v1 and traffic come from. A real model has
    # none and is bootstrapped from its own data (`relearn bootstrap --dataset FILE`).
    simulation: SimulationConfig | None = None
    retention: RetentionConfig = RetentionConfig()
    health: HealthConfig = HealthConfig()
    registry: RegistryConfig = RegistryConfig()

    @model_validator(mode="after")
    def _check_names(self) -> Self:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        if self.label in names:
            raise ValueError(f"label column '{self.label}' is also a feature")
        taken = sorted(RESERVED_COLUMNS.intersection([*names, self.label]))
        if taken:
            raise ValueError(
                f"{', '.join(taken)}: Relearn's own column name(s), not usable for a feature or "
                f"the label; rename it in the config (the JSON key your service logs must match)"
            )
        if self.time_column is not None and self.time_column in {*names, self.label}:
            raise ValueError(f"time column '{self.time_column}' is also a feature or the label")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be unique")
        if self.kind is ModelKind.SKLEARN_HGB:
            wide = [f.name for f in self.features if len(f.categories) > HGB_MAX_CATEGORIES]
            if wide:
                raise ValueError(
                    f"sklearn_hgb supports at most {HGB_MAX_CATEGORIES} categories per feature; "
                    f"{wide} have more (use torch_mlp or sklearn_logreg, or group rare ones)"
                )
        weights = self.simulation.class_weights if self.simulation else None
        if weights is not None and len(weights) != len(self.classes):
            raise ValueError("simulation.class_weights needs one weight per class")
        return self

    @model_validator(mode="after")
    def _check_decay_learning_rate(self) -> Self:
        rate = self.training.learning_rate * self.drift.decay_learning_rate_factor
        if self.drift.retrain_from_change and rate > 1:
            raise ValueError(
                f"training.learning_rate x drift.decay_learning_rate_factor is {rate:g}: "
                "a decay retraining's learning rate must be at most 1"
            )
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


class RelearnConfig(StrictModel):
    models: Annotated[list[ModelConfig], Field(min_length=1)]
    source: Path | None = None

    @model_validator(mode="after")
    def _unique_models(self) -> Self:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError("model names must be unique")
        return self

    def model(self, name: str) -> ModelConfig:
        """The model called ``name``; a ConfigError listing the known names otherwise."""
        for model in self.models:
            if model.name == name:
                return model
        known = ", ".join(m.name for m in self.models)
        raise ConfigError(f"unknown model '{name}' (configured: {known})")

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]


def config_path() -> Path:
    return Path(os.environ.get("RELEARN_CONFIG", DEFAULT_CONFIG_FILE)).expanduser()


def _apply_env_overrides(raw: dict[str, Any], environ: dict[str, str]) -> None:
    models = raw.get("models")
    if not isinstance(models, list):
        return
    for key, value in sorted(environ.items()):
        if not key.startswith(ENV_PREFIX):
            continue
        parts = key[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) == 3:
            targets = [m for m in models if isinstance(m, dict) and m.get("name") == parts[0]]
            parts = parts[1:]
        elif len(parts) == 2:
            targets = [m for m in models if isinstance(m, dict)]
        else:
            raise ConfigError(
                f"environment variable {key}: expected RELEARN__SECTION__KEY "
                "or RELEARN__MODEL__SECTION__KEY"
            )
        section, field = parts
        for model in targets:
            model.setdefault(section, {})
            if not isinstance(model[section], dict):
                raise ConfigError(f"environment variable {key}: '{section}' is not a section")
            try:
                model[section][field] = yaml.safe_load(value)
            except yaml.YAMLError as error:
                raise ConfigError(f"environment variable {key}: {_yaml_problem(error)}") from None


def describe_errors(error: ValidationError) -> str:
    """Pydantic's errors as one line: ``field.path: message; ...`` (a CLI prints one line)."""
    parts = []
    for item in error.errors():
        field = ".".join(
            f"[{part}]" if isinstance(part, int) else str(part) for part in item["loc"]
        ).replace(".[", "[")
        parts.append(f"{field or '(top level)'}: {item['msg']}")
    return "; ".join(parts)


def parse_config(raw: Any, path: Path, environ: dict[str, str] | None = None) -> RelearnConfig:
    """Validate an already-parsed YAML document; ``path`` is only used in messages."""
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid configuration in {path}: expected a mapping with 'models'")
    _apply_env_overrides(raw, dict(os.environ) if environ is None else environ)
    try:
        return RelearnConfig.model_validate({**raw, "source": path})
    except ValidationError as error:
        raise ConfigError(f"invalid configuration in {path}: {describe_errors(error)}") from None


def load_config(path: Path | str | None = None) -> RelearnConfig:
    """Read and validate the configuration file (``RELEARN_CONFIG`` when no path is given)."""
    path = Path(path) if path is not None else config_path()
    if not path.is_file():
        raise ConfigError(
            f"missing configuration: {path} does not exist "
            "(set RELEARN_CONFIG or copy relearn.yaml from the repository)"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"invalid configuration in {path}: not UTF-8 text "
            f"(byte 0x{error.object[error.start]:02x} at offset {error.start})"
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"invalid configuration in {path}: {_yaml_problem(error)}") from None
    return parse_config(raw, path)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """The parser's complaint and where, on one line (its own message spans several)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"not valid YAML: {error.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return f"not valid YAML ({' '.join(str(error).split())})"
