"""
### Retention

Every day, for each configured model (or the one chosen in the trigger form), the prediction
log keeps the last `retention.days` (default 90, per model in `relearn.yaml`):

1. each older UTC day is exported to Parquet in the model's MLflow run
   `<model>-prediction-archive` (`prediction_archive/<day>/part-NNNN.parquet`, every column
   plus each row's content digest) and recorded in `prediction_archives` with its row count
   and digests;
2. the file is read back from the artifact store and verified (bytes, row count, digest);
3. only then are its rows deleted, in short transactions of `retention.batch_size` rows by
   primary key, and only rows whose content still matches the archive (a late outcome or new
   feedback keeps the row for the next run's archive); the table is vacuumed afterwards.

Rows inside the window of a running retraining are never touched. Rows whose `predicted_at`
no UTC day can hold (`-infinity`, `infinity`, BC, after 9999) go the same way as one more
bucket, `prediction_archive/unplaceable/`. Quarantined rows, health checks, drift reports and
usage events expire after `quarantine_days`, `health_check_days`, `drift_report_days` and
`usage_event_days`; feedback goes (archived) with its prediction. A retried task exports
nothing twice: it resumes the recorded archives.

**versions** (beside it): the model files of registered versions older than the last
`registry.keep_versions` (default 5) without an alias are deleted and the version tagged
`relearn.archived`; a version with an alias, under a live A/B test or used by an in-flight
retraining always stays.

Params: `model` (empty = every configured model), `dry_run` (only report what would go).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from relearn_airflow.limits import Limit, retry_delay, timeout
from relearn_airflow.operators.retention import RetentionOperator, VersionRetentionOperator
from relearn_airflow.params import model_param
from relearn_airflow.tasks import configured_models


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["relearn", "maintenance"],
    # A first run over a long backlog archives many days; later runs expire one day each.
    dagrun_timeout=timeout(Limit.RETENTION_RUN),
    default_args={
        "retries": 2,
        "retry_delay": retry_delay(pendulum.duration(minutes=5)),
        "execution_timeout": timeout(Limit.RETENTION),
    },
    params={
        "model": model_param(),
        "dry_run": Param(False, type="boolean", description="Only report what would go"),
    },
)
def retention() -> None:
    models = configured_models()
    RetentionOperator.partial(task_id="expire").expand(model_name=models)
    VersionRetentionOperator.partial(task_id="versions").expand(model_name=models)


retention()
