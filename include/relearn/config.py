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
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_CONFIG_FILE = "relearn.yaml"
# Columns the pipeline puts next to the features in its frames (the prediction log's own, the
# window's role, the dataset's split): a feature or label of the same name would be overwritten.
RESERVED_COLUMNS = frozenset(
    {
        "prediction_id",
        "model_version",
        "predicted_at",
        "outcome_at",
        "predicted_label",
        "actual_label",
        "confidence",
        "role",
        "split",
    }
)
ENV_PREFIX = "RELEARN__"

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
# A span of hours a window or a pause reaches back: finite, at most a year.
Hours = Annotated[float, Field(ge=0, le=24 * 365, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(gt=0)]


class ConfigError(ValueError):
    """The configuration file is missing or invalid; the message names the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class Feature(_Strict):
    """One input column. ``min``/``max`` bound valid numeric values (validation uses them)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    type: FeatureType
    categories: list[str] = Field(default_factory=list)
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


class HGBConfig(_Strict):
    """Hyperparameters of the ``sklearn_hgb`` kind (scikit-learn's names and meanings).

    ``learning_rate`` here is the boosting shrinkage; ``training.learning_rate`` and
    ``training.epochs`` belong to the torch MLP and do not apply to this kind.
    """

    max_iter: PositiveInt = 200
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.1
    max_leaf_nodes: Annotated[int, Field(ge=2)] | None = 31
    max_depth: PositiveInt | None = None
    min_samples_leaf: PositiveInt = 20
    l2_regularization: Annotated[float, Field(ge=0)] = 0.0
    # Early stopping: stop after this many iterations without a better validation loss.
    n_iter_no_change: PositiveInt = 10


class TrainingConfig(_Strict):
    epochs: PositiveInt = 5
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 1e-3
    fine_tune_lr_factor: Annotated[float, Field(gt=0, le=1)] = 0.1
    batch_size: PositiveInt = 64
    hidden_units: list[PositiveInt] = Field(default_factory=lambda: [32, 16])
    patience: PositiveInt = 2
    validation_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    random_seed: int = 42
    # Rows the simulator draws for a demo model's v1.
    reference_rows: PositiveInt = 5000
    # Bootstrapping from a dataset file trains on a uniform sample of at most this many rows,
    # so a file of any size fits in the daily loop's memory.
    max_dataset_rows: PositiveInt = 100_000
    hgb: HGBConfig = HGBConfig()


class ReinforcementConfig(_Strict):
    lookback_days: PositiveInt = 7
    min_error_samples: PositiveInt = 10
    confidence_threshold: Fraction = 0.7
    # Correct recent cases replayed per error, so the model does not forget what it got right.
    # 10 keeps the training mix close to the traffic's (at 1, half of it is errors — mostly
    # label noise after a covariate shift — and a fine-tune lost 3-14 accuracy points on the
    # old inputs; at 10, <= 1; bench/quality/forgetting.py). A window has at most its own
    # correct rows to replay, so after a concept shift the mix is all the new regime holds.
    replay_ratio: Annotated[float, Field(ge=0)] = 10.0
    # Fine-tune on the window one day at a time, oldest first, instead of all at once
    # (``relearn.training.incremental``; measured by ``bench/incremental.py``).
    incremental: bool = False
    # Share of a window's rows that may fail data validation (and be quarantined) before the
    # whole batch is judged unusable and the run fails.
    max_invalid_fraction: Fraction = 0.2
    # The holdout (never trained on) is the most recent rows of this share of the window.
    holdout_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    max_holdout_rows: PositiveInt = 20_000
    # Retraining on volume (the ``volume_retraining`` DAG): off unless ``min_new_labelled`` is
    # set; then a run starts once that many predictions got their outcome since the last run
    # of any source, and at least ``min_interval_hours`` after it.
    min_new_labelled: PositiveInt | None = None
    min_interval_hours: Annotated[float, Field(ge=0)] = 24.0


class GateConfig(_Strict):
    min_f1: Fraction = 0.65
    min_accuracy: Fraction = 0.65
    min_class_precision: Fraction = 0.60
    min_class_recall: Fraction = 0.60
    min_mean_confidence: Fraction = 0.70
    min_eval_samples: PositiveInt = 100
    max_regression: Fraction = 0.01
    # The candidate's holdout accuracy must exceed the champion's by this much (absolute) to be
    # blessed, i.e. to become the challenger and get an A/B test. 0 turns this bar off (then a
    # candidate within max_regression of the champion is blessed, as before).
    min_improvement: Fraction = 0.02


class DriftConfig(_Strict):
    """When a window counts as drifted, and what retraining it triggers (``relearn.drift``)."""

    # Share of the assessed features that must drift for the window to count as drifted.
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.2
    check_interval_minutes: PositiveInt = 60
    window_hours: PositiveInt = 24
    # No verdict on fewer rows (features) or fewer labelled rows (performance).
    min_rows: PositiveInt = 200
    min_labelled_rows: PositiveInt = 200
    # Performance decay: the champion's accuracy this far (absolute) below its reference
    # accuracy, and significantly so.
    max_accuracy_drop: Fraction = 0.05
    # How late outcomes usually arrive: the performance check reads the labelled rows of the
    # last window_hours + this, so with 48 h delays it is not blind (0: window_hours only).
    outcome_delay_hours: Hours = 0.0
    # No drift retrain within this many hours after the last one.
    cooldown_hours: Hours = 24
    # The retrain learns from this many recent days (short: mostly post-drift traffic).
    retrain_lookback_days: PositiveInt = 2
    fine_tune: bool = True
    # A decayed verdict's retrain learns from the rows since the decline began (the performance
    # check's change point, in hours) instead, and from every error there with at least this
    # confidence (0: all of them; relearn.drift.retrain).
    retrain_from_change: bool = True
    decay_confidence_threshold: Fraction = 0.0
    # ... at training.learning_rate times this (a fine-tune's fine_tune_lr_factor still
    # applies): at the usual fine-tune rate a moved concept is learnt too slowly to pass the gates.
    decay_learning_rate_factor: Annotated[float, Field(gt=0, le=1000)] = 10.0
    # Accuracy estimated from calibrated confidences (while outcomes are late) that fell as
    # far as max_accuracy_drop gives the verdict estimated_decay: a warning, unless this is on.
    retrain_on_estimated_decay: bool = False


class ABTestConfig(_Strict):
    """How a challenger earns traffic (``relearn.abtest.policy``)."""

    # "staged": 10 -> 25 -> 50 -> 100 % on evidence; "bandit": Thompson sampling shares.
    policy: Literal["staged", "bandit"] = "staged"
    # Start a test by itself for a pending or untested challenger when none is running.
    auto_start: bool = True
    stages: list[Annotated[int, Field(gt=0, le=100)]] = Field(
        default_factory=lambda: [10, 25, 50, 100]
    )
    # Hours since the test started before it may move to stage 2, 3, ... (cumulative).
    min_dwell_hours: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: [24, 48, 72]
    )
    min_samples_per_arm: PositiveInt = 1000
    # Relative accuracy improvement over the champion needed to promote (also promoted at once,
    # skipping stages, once even the anytime-valid interval's lower end clears it).
    min_improvement: Fraction = 0.02
    # A test still inconclusive this many hours after its start is rolled back (champion kept),
    # so the next blessed candidate can be tested. At least the last min_dwell_hours.
    max_duration_hours: Annotated[float, Field(gt=0)] = 168.0
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    require_approval: bool = False
    # Guardrails (checked from min_guardrail_samples labelled rows on): roll back when the
    # challenger's p95 latency exceeds the champion's by this fraction, its error rate the
    # champion's by this much (absolute), or its accuracy / macro F1 falls below a floor.
    min_guardrail_samples: PositiveInt = 100
    max_latency_increase: Annotated[float, Field(ge=0)] = 0.5
    # ... plus this many milliseconds (sub-millisecond latencies jitter by more than 50 %).
    latency_slack_ms: Annotated[float, Field(ge=0)] = 5.0
    max_error_rate_increase: Fraction = 0.10
    min_accuracy: Fraction | None = None
    min_f1: Fraction | None = None
    # Bandit policy: each arm keeps at least this share of traffic.
    bandit_floor: Annotated[float, Field(ge=0.0, le=0.5)] = 0.01

    @model_validator(mode="after")
    def _check_stages(self) -> Self:
        if self.stages != sorted(set(self.stages)) or self.stages[-1] != 100:
            raise ValueError("stages must be strictly increasing and end at 100")
        if len(self.min_dwell_hours) != len(self.stages) - 1:
            raise ValueError("min_dwell_hours needs one entry per stage transition")
        if self.min_dwell_hours and self.max_duration_hours < self.min_dwell_hours[-1]:
            raise ValueError(
                f"max_duration_hours ({self.max_duration_hours:g}) must be at least the last "
                f"min_dwell_hours ({self.min_dwell_hours[-1]:g}): a test would end before "
                "it could pass"
            )
        return self


class SimulationConfig(_Strict):
    """The demo world that generates traffic for this model (see ``relearn.simulate``)."""

    seed: int = 7
    class_weights: list[Annotated[float, Field(gt=0)]] | None = None
    label_noise: Fraction = 0.05
    signal_strength: Annotated[float, Field(gt=0)] = 2.0
    predictions_per_hour: PositiveInt = 60
    outcome_delay_hours: Annotated[float, Field(ge=0)] = 6.0
    # What ``make demo`` injects 60 % into its simulated week: the label function changes
    # ("concept"), numeric inputs move ("covariate"), both, or nothing.
    demo_drift: Literal["none", "covariate", "concept", "both"] = "concept"


class RetentionConfig(_Strict):
    """How long each table keeps a model's rows (``relearn.retention``), in days."""

    # The prediction log; older rows are archived to Parquet in MLflow, then deleted.
    days: PositiveInt = 90
    # Rows validation quarantined: evidence of a producer's bad data, kept as long as the log.
    quarantine_days: PositiveInt = 90
    # Hourly health checks: a month of history is what anyone looks at.
    health_check_days: PositiveInt = 30
    # Drift reports are the lineage of drift-triggered retrainings: kept longer.
    drift_report_days: PositiveInt = 180
    # Usage events (clicks, conversions a service reports): as long as the log they go with.
    usage_event_days: PositiveInt = 90
    alert_days: PositiveInt = 180
    # Rows deleted per transaction (short transactions: no long locks, vacuum keeps up).
    batch_size: Annotated[int, Field(ge=100, le=100_000)] = 5000


class HealthConfig(_Strict):
    """The health score's latency budget and the alerts' cooldown (``relearn.monitoring``)."""

    # The champion's p95 latency budget: the latency part is 1 within it, 0 at twice it.
    latency_budget_ms: Annotated[float, Field(gt=0)] = 250.0
    # No second alert of one kind for a model within this many hours of the last one.
    alert_cooldown_hours: Annotated[float, Field(ge=0)] = 6.0


class RegistryConfig(_Strict):
    """The model's registered versions (``relearn.registry``)."""

    # Versions without an alias whose artifacts stay; older ones are archived by the
    # retention DAG (a version with an alias, under test or in a retraining always stays).
    keep_versions: PositiveInt = 5


class ModelConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")]
    kind: ModelKind = ModelKind.TORCH_MLP
    label: str = "label"
    # A column of the training dataset that orders its rows in time: bootstrapping from a
    # dataset then trains on the past and validates on the most recent rows.
    time_column: str | None = None
    classes: Annotated[list[str], Field(min_length=2)]
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


class RelearnConfig(_Strict):
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
