-- A retraining run started by Airflow links to its DAG run's page (task instances, their logs).
ALTER TABLE model_retraining_runs ADD COLUMN airflow_url TEXT;
