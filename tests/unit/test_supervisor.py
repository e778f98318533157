"""The dev stack's supervisor stops whole process groups, not only their leaders."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

import psutil

from relearn_dev.stack.supervisor import Service, Supervisor

if TYPE_CHECKING:
    from pathlib import Path


def _live(pgid: int) -> list[int]:
    found = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
        except (psutil.Error, OSError):
            continue
    return found


def test_stop_all_kills_a_child_that_outlives_its_leader(tmp_path: Path) -> None:
    # The leader ends on SIGTERM; its child ignores SIGTERM, as a LocalExecutor worker busy
    # with a task can. stop_all must not return with the child still running.
    started = tmp_path / "started"
    service = Service(
        name="leader",
        command=[
            "sh",
            "-c",
            f"(trap '' TERM; touch {started}; exec sleep 600) & exec sleep 600",
        ],
        env={"PATH": os.environ["PATH"]},
        log_file=tmp_path / "leader.log",
    )
    supervisor = Supervisor()
    supervisor.start(service)
    assert service.process is not None
    pgid = service.process.pid
    deadline = time.monotonic() + 10
    while not started.exists() or len(_live(pgid)) < 2:
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    try:
        supervisor.stop_all(timeout=1.0)
        assert _live(pgid) == []
    finally:
        for pid in _live(pgid):
            os.kill(pid, signal.SIGKILL)
