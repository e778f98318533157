"""Airflow's task-log server, bound to a loopback address (Airflow's own listens on every
interface).

Run as ``python -m relearn_dev.stack.log_server`` with Airflow's environment: it serves the files
under ``[logging] base_log_folder`` to the api-server, behind Airflow's JWT check, on
``[logging] worker_log_server_port``; the triggerer's log port points at it too, since both
write into the same folder on this machine. The address is 127.0.0.1 unless
``RELEARN_WORKER_ADDRESS`` names another loopback address: each Celery worker of the local stack
stands for a machine of its own (``relearn_dev.stack.executor``), records its address as the
hostname of the tasks it runs, and has a log server there.
"""

from __future__ import annotations

import os

import uvicorn
from airflow.configuration import conf

from relearn_dev.stack.executor import WORKER_ADDRESS_VARIABLE

LOOPBACK = "127.0.0.1"


def loopback_hostname() -> str:
    """Airflow's ``[core] hostname_callable``: the api-server fetches logs from this host."""
    return os.environ.get(WORKER_ADDRESS_VARIABLE) or LOOPBACK


def main() -> None:
    uvicorn.run(
        "airflow.utils.serve_logs.log_server:get_app",
        host=loopback_hostname(),
        port=conf.getint("logging", "worker_log_server_port"),
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
