"""``RelearnApiPlugin``: mounts the collection API and the Relearn page in the Airflow api-server.

Registered through the ``airflow.plugins`` entry point (``relearn_airflow`` is an installed
package that the plugins folder's ``.airflowignore`` hides from the file loader).
"""

from __future__ import annotations

import functools
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from relearn_airflow.api.app import URL_PREFIX
from relearn_airflow.ui.app import URL_PREFIX as PAGE_PREFIX
from relearn_airflow.ui.app import external_view


@functools.cache
def _fastapi_apps() -> list[dict[str, Any]]:
    from relearn_airflow.api.app import create_app
    from relearn_airflow.api.metrics import metrics_app
    from relearn_airflow.ui.app import create_app as create_page_app

    return [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "Relearn collection API"},
        {"app": create_page_app(), "url_prefix": PAGE_PREFIX, "name": "Relearn page"},
        metrics_app(),
    ]


class RelearnApiPlugin(AirflowPlugin):
    name = "relearn_api"

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        # Every Airflow process loads plugins; only the api-server reads this, so the app
        # (and Airflow's API security module) is built there, on first read.
        return _fastapi_apps()

    # The Relearn page in Airflow's navigation, an iframe of the page app above.
    external_views = [external_view()]
