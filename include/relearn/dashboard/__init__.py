"""Read models of the Relearn page: what one model's deployment, health, alerts, error analysis,
runs, trends, A/B test and request queue look like now, as plain dataclasses (JSON through
``dataclasses.asdict``).

``relearn.store.dashboard`` holds the page's own SQL (bounded queries); health, alerts and
analyses are read with their stores' readers. These modules shape the rows and the registry's
answers for the page. No Airflow here: the plugin app in
``relearn_airflow.ui`` serves them.
"""
