"""Airflow's task-log server, bound to 127.0.0.1 (Airflow's own listens on every interface).

Run as ``python -m relearn_dev.stack.log_server`` with Airflow's environment: it serves the files
under ``[logging] base_log_folder`` to the api-server, behind Airflow's JWT check, on
``[logging] worker_log_server_port``; the triggerer's log port points at it too, since both
write into the same folder on this machine.
"""

from __future__ import annotations

import uvicorn
from airflow.configuration import conf

LOOPBACK = "127.0.0.1"


def loopback_hostname() -> str:
    """Airflow's ``[core] hostname_callable``: the api-server fetches logs from this host."""
    return LOOPBACK


def main() -> None:
    uvicorn.run(
        "airflow.utils.serve_logs.log_server:get_app",
        host=LOOPBACK,
        port=conf.getint("logging", "worker_log_server_port"),
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
