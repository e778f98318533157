"""Read models of the Relearn page: what one model's deployment, health, runs, trends, A/B test
and request queue look like now, as plain dataclasses (JSON through ``dataclasses.asdict``).

``relearn.store.dashboard`` holds the SQL (bounded queries); these modules shape its rows and
the registry's answers for the page. No Airflow here: the plugin app in
``relearn_airflow.ui`` serves them.
"""
