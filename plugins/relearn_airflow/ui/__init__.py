"""The Relearn page in Airflow's UI: a FastAPI app (JSON API + static front end) and its plugin."""
