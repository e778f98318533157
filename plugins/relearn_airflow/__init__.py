"""Relearn's Airflow provider: hooks, operators, sensors and triggers around ``relearn``."""
