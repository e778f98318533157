"""What one retraining run is asked to do, and where each value comes from.

In order of precedence: explicit overrides (CLI flags, a request, a drift report), then the
DAG run's Params (only those named in ``OPTION_PARAMS``), then the model's configuration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from relearn.store import runs

if TYPE_CHECKING:
    from collections.abc import Mapping

    from relearn.config import ModelConfig

# DAG Param name -> option. Only these Params set options; the others a DAG has (``model``,
# drift's ``window_hours``, ...) mean something else.
OPTION_PARAMS: Mapping[str, str] = MappingProxyType(
    {
        "lookback_days": "lookback_days",
        "confidence_threshold": "confidence_threshold",
        "min_error_samples": "min_error_samples",
        "fine_tune": "fine_tune",
        "epochs": "epochs",
        "learning_rate": "learning_rate",
        "replay_ratio": "replay_ratio",
        "incremental": "incremental",
        "dry_run": "dry_run",
        "source": "source",
        "request_id": "request_id",
        "triggered_by": "triggered_by",
    }
)

MAX_WINDOW_HOURS = 24 * 366


@dataclass(frozen=True)
class ReinforceOptions:
    """Per-run options (DAG Params / CLI flags); unset ones come from the model's config."""

    lookback_days: int
    confidence_threshold: float
    min_error_samples: int
    fine_tune: bool
    epochs: int
    learning_rate: float
    replay_ratio: float
    incremental: bool = False
    dry_run: bool = False
    source: str = "auto_daily"
    request_id: str | None = None
    triggered_by: str | None = None
    drift_report_id: str | None = None
    # Hours of window instead of lookback_days: a decay-triggered run learns from the rows
    # since the decline its drift report found (relearn.drift.retrain).
    lookback_hours: float | None = None

    @classmethod
    def from_config(cls, model_cfg: ModelConfig, **overrides: Any) -> ReinforceOptions:
        """The model's configured defaults, with every non-empty override applied."""
        unknown = set(overrides) - _NAMES
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}")
        rf, training = model_cfg.reinforcement, model_cfg.training
        values: dict[str, Any] = {
            "lookback_days": rf.lookback_days,
            "confidence_threshold": rf.confidence_threshold,
            "min_error_samples": rf.min_error_samples,
            "fine_tune": True,
            "epochs": training.epochs,
            "learning_rate": training.learning_rate,
            "replay_ratio": rf.replay_ratio,
            "incremental": rf.incremental,
        }
        values.update({k: v for k, v in overrides.items() if v is not None and v != ""})
        options = cls(**values)
        options.check()
        return options

    @classmethod
    def from_params(
        cls,
        model_cfg: ModelConfig,
        params: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
    ) -> ReinforceOptions:
        """A DAG run's options: its Params named in ``OPTION_PARAMS``, then ``overrides``."""
        chosen = {option: params[name] for name, option in OPTION_PARAMS.items() if name in params}
        return cls.from_config(model_cfg, **{**chosen, **(overrides or {})})

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ReinforceOptions:
        """The options a run was started with, read back from its row's ``params``."""
        return cls(**{name: record[name] for name in _NAMES if name in record})

    def to_record(self) -> dict[str, Any]:
        """The options as stored in the run's row (``from_record`` reads them back)."""
        return asdict(self)

    def window_start(self, window_end: datetime) -> datetime:
        """Where the run's window starts: ``lookback_hours`` before its end when set, else
        ``lookback_days``."""
        return _window_start(window_end, self.lookback_hours, self.lookback_days)

    def check(self) -> None:
        if self.lookback_days < 1:
            raise ValueError("lookback_days must be at least 1")
        if not 0 <= self.confidence_threshold <= 1:
            raise ValueError("confidence_threshold must be within [0, 1]")
        if self.min_error_samples < 1 or self.epochs < 1:
            raise ValueError("min_error_samples and epochs must be at least 1")
        if not 0 < self.learning_rate <= 1:
            raise ValueError("learning_rate must be within (0, 1]")
        if self.lookback_hours is not None and not 0 < self.lookback_hours <= MAX_WINDOW_HOURS:
            raise ValueError(f"lookback_hours must be within (0, {MAX_WINDOW_HOURS}]")
        if self.replay_ratio < 0:
            raise ValueError("replay_ratio must not be negative")
        if self.source not in runs.SOURCES:
            raise ValueError(f"source must be one of {', '.join(runs.SOURCES)}")


def recorded_window(params: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """A run's window (start, end) as its row's ``params`` record it; rows written before an
    option existed lack it, so this reads the two it needs rather than every option.

    :raises KeyError, TypeError, ValueError, OverflowError: the window is not recorded.
    """
    end = datetime.fromisoformat(params["window_end"])
    # Runs recorded before the option's rename call it ``window_hours``.
    hours = params.get("lookback_hours", params.get("window_hours"))
    return _window_start(end, None if hours is None else float(hours), params["lookback_days"]), end


def _window_start(
    window_end: datetime, lookback_hours: float | None, lookback_days: int
) -> datetime:
    if lookback_hours is not None:
        return window_end - timedelta(hours=lookback_hours)
    return window_end - timedelta(days=int(lookback_days))


_NAMES = frozenset(f.name for f in fields(ReinforceOptions))
