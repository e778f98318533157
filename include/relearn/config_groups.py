"""The option groups of a model's configuration, one per concern: training, reinforcement,
gates, drift, A/B testing, simulation, retention, health and the registry.

Each group is a strict pydantic model with its defaults and limits; ``relearn.config`` puts
them together per model and loads the file.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
# A span of hours a window or a pause reaches back: finite, at most a year.
Hours = Annotated[float, Field(ge=0, le=24 * 365, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(gt=0)]


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo must not pass silently); values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HGBConfig(StrictModel):
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


class TrainingConfig(StrictModel):
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


class ReinforcementConfig(StrictModel):
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


class GateConfig(StrictModel):
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


class DriftConfig(StrictModel):
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
    # A decayed champion first has up to this many previous champions scored on its labelled
    # rows since the decline; one the gates bless against it, and better by an exact McNemar
    # test at comeback_significance, is champion again instead of a retraining (a regime
    # that returns; relearn.drift.comeback). 0: off.
    comeback_versions: Annotated[int, Field(ge=0, le=20)] = 3
    comeback_significance: Annotated[float, Field(gt=0, lt=0.5)] = 0.01


class ABTestConfig(StrictModel):
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
    # A candidate of a decay retraining (the champion measurably lost accuracy) starts at the
    # largest stage at most this share: every hour most traffic stays on a decayed champion
    # costs accuracy. The guardrails judge it from min_guardrail_samples labelled rows per arm.
    decay_start_percent: Annotated[int, Field(gt=0, lt=100)] = 50
    # ... and is promoted at once, without a test, when its gate's holdout (rows since the
    # decline, unseen in training) shows it better than the decayed champion by
    # gates.min_improvement with McNemar p below this (from the two accuracies, at their
    # least significant pairing; relearn.abtest.policy.offline_promotion). 0: always tested.
    offline_significance: Annotated[float, Field(ge=0, lt=0.5)] = 0.001
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


class SimulationConfig(StrictModel):
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


class RetentionConfig(StrictModel):
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


class HealthConfig(StrictModel):
    """The health score's latency budget and the alerts' cooldown (``relearn.monitoring``)."""

    # The champion's p95 latency budget: the latency part is 1 within it, 0 at twice it.
    latency_budget_ms: Annotated[float, Field(gt=0)] = 250.0
    # No second alert of one kind for a model within this many hours of the last one.
    alert_cooldown_hours: Annotated[float, Field(ge=0)] = 6.0


class RegistryConfig(StrictModel):
    """The model's registered versions (``relearn.registry``)."""

    # Versions without an alias whose artifacts stay; older ones are archived by the
    # retention DAG (a version with an alias, under test or in a retraining always stays).
    keep_versions: PositiveInt = 5
