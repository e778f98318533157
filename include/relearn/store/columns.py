"""The prediction log's column names that Relearn's frames carry next to a model's features.

A leaf (no imports): the configuration refuses them as feature or label names
(``relearn.config.RESERVED_COLUMNS``), so the schema they belong to has one owner here.
"""

# The log's columns as the store reads a prediction back (``prediction_log.BASE_COLUMNS``).
LOG_COLUMNS = (
    "prediction_id",
    "model_version",
    "predicted_at",
    "outcome_at",
    "predicted_label",
    "actual_label",
    "confidence",
)
# What a producer sends per prediction (``relearn.collect``); a flat batch has one column per
# feature beside these instead of ``features``.
PREDICTION_COLUMNS = (
    "prediction_id",
    "model_version",
    "unit_id",
    "predicted_at",
    "features",
    "predicted_label",
    "confidence",
    "probabilities",
    "latency_ms",
    "served_by",
)
