-- The rest of "one name per meaning": drift reports, A/B decisions and health checks are keyed
-- by what triggered them (an Airflow run id or a key the CLI made), like retraining runs since
-- 0006, so their column is trigger_key too (was run_key / dag_run_id).

ALTER TABLE drift_reports RENAME COLUMN run_key TO trigger_key;
ALTER TABLE ab_decisions RENAME COLUMN run_key TO trigger_key;
ALTER TABLE health_checks RENAME COLUMN dag_run_id TO trigger_key;
