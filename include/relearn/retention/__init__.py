"""Retention: each model keeps ``retention.days`` of its prediction log, archived before
it goes (``expire``: the steps, ``archive``: the Parquet files in MLflow)."""

from relearn.retention.expire import DayOutcome, DayStatus, RetentionResult, expire_model

__all__ = ["DayOutcome", "DayStatus", "RetentionResult", "expire_model"]
