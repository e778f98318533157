"""The collection API: predictions, outcomes and feedback over HTTP, in the Airflow api-server.

Mounted under ``/relearn/api/v1`` by ``RelearnApiPlugin`` (``plugin``); every route needs an
authenticated Airflow user, so the REST API's token works here too.
"""
