"""Auto-reinforcement: learn from a window's high-confidence errors, gate, register.

The loop is five steps, each safe to run again (Airflow runs tasks at least once) and each
handing over only the retraining run id; what a step needs lives in the
``model_retraining_runs`` row (options, champion version, window end), its MLflow run
(validation result, dataset snapshot, candidate model) and the registry:

``record.start`` -> ``prepare`` -> ``train`` -> ``evaluate`` -> ``publish``; ``record.fail``
on any error. ``loop.reinforce`` runs them all in one process (the CLI, the bench).

Modules: ``options`` (what a run is asked to do), ``results`` (what a step reports),
``record`` (the run's row: start, read, fail), ``artifacts`` (the run's MLflow side),
one module per step, ``handover`` (the challenger alias, the A/B test request, closing a
manual request) and ``loop``.

The champion is never touched: a blessed candidate only gets the ``challenger`` alias, and
only after its run row is ``completed``.

This ``__init__`` stays import-free, so importing one step does not import the others.
"""


class RetrainingError(RuntimeError):
    """A run cannot go on for a reason retrying will not fix (bad data, an empty holdout)."""
