"""Collection of predictions, outcomes and feedback sent by services Relearn does not run.

The HTTP API (``relearn_airflow.api``) and ``relearn ingest`` are two doors to the same steps:

- ``rows``: incoming prediction rows as a frame, and which of them the model's checks accept;
- ``checks``: the per-row checks of ``relearn.validation`` evaluated in memory, fast enough
  for a request (the same ``Check`` list, so a row is rejected here for exactly the reason the
  retraining validation would quarantine it);
- ``record``: accepted predictions, outcomes and feedback written to the log;
- ``models``: what a client may ask about a model (versions, aliases, live split, its arm);
- ``ingest``: backfills from CSV, Parquet or JSON Lines files.
"""

# The most rows one request or call may carry (the HTTP API's documented limit).
MAX_BATCH = 10_000
