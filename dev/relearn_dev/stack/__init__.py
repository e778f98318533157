"""The local stack: embedded Postgres, the MLflow server and Airflow's components."""
