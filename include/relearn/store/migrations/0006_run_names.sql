-- One name per meaning of "run id". A retraining run is keyed by what triggered it: the
-- Airflow run id of its DAG run, or a key made by the CLI (cli__<uuid>, drift__<report id>),
-- so the column is its trigger_key, not a dag_run_id. A quarantined row names the retraining
-- run that rejected it as retraining_run_id, like requests, drift reports and A/B tests do.

ALTER TABLE model_retraining_runs RENAME COLUMN dag_run_id TO trigger_key;
ALTER TABLE model_retraining_runs RENAME CONSTRAINT model_retraining_runs_dag_run_id_model_name_key
    TO model_retraining_runs_trigger_key_model_name_key;

ALTER TABLE prediction_quarantine RENAME COLUMN run_id TO retraining_run_id;
ALTER TABLE prediction_quarantine RENAME CONSTRAINT prediction_quarantine_run_id_fkey
    TO prediction_quarantine_retraining_run_id_fkey;
