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

Rows inside the window of a running retraining are never touched. Quarantined rows, health
checks and drift reports expire after `quarantine_days`, `health_check_days` and
`drift_report_days`. A retried task exports nothing twice: it resumes the recorded archives.

Params: `model` (empty = every configured model), `dry_run` (only report what would go).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from relearn_airflow.limits import Limit, timeout
from relearn_airflow.operators.retention import RetentionOperator
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
        "retry_delay": pendulum.duration(minutes=5),
        "execution_timeout": timeout(Limit.RETENTION),
    },
    params={
        "model": model_param(),
        "dry_run": Param(False, type="boolean", description="Only report what would go"),
    },
)
def retention() -> None:
    RetentionOperator.partial(task_id="expire").expand(model_name=configured_models())


retention()
