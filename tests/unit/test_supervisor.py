"""The dev stack's supervisor stops everything a service started, not only its leader."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import psutil
import pytest

from relearn_dev.stack.supervisor import (
    Service,
    Supervisor,
    record_owner,
    stop_owner,
    stop_recorded,
)

if TYPE_CHECKING:
    from pathlib import Path

# A task process as Airflow runs one: in a process group of its own, deaf to SIGTERM.
OWN_GROUP_TASK = (
    "import os, signal, time; os.setpgid(0, 0); signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "open({marker!r}, 'w').close(); time.sleep(600)"
)


def _live(sid: int) -> list[int]:
    found = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getsid(process.pid) == sid and process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
        except (psutil.Error, OSError):
            continue
    return found


def test_stop_all_kills_what_outlives_the_leader(tmp_path: Path) -> None:
    # The leader ends on SIGTERM. One child ignores SIGTERM in the leader's process group (a
    # LocalExecutor worker busy with a task); another in a group of its own (an Airflow task).
    in_group, own_group = tmp_path / "in_group", tmp_path / "own_group"
    task = OWN_GROUP_TASK.format(marker=str(own_group))
    service = Service(
        name="leader",
        command=[
            "sh",
            "-c",
            f"(trap '' TERM; touch {in_group}; exec sleep 600) & "
            f'{sys.executable} -c "{task}" & exec sleep 600',
        ],
        env={"PATH": os.environ["PATH"]},
        log_file=tmp_path / "leader.log",
    )
    supervisor = Supervisor()
    supervisor.start(service)
    assert service.process is not None
    sid = service.process.pid
    deadline = time.monotonic() + 20
    while not (in_group.exists() and own_group.exists()) or len(_live(sid)) < 3:
        assert time.monotonic() < deadline, "the children never started"
        time.sleep(0.05)
    try:
        supervisor.stop_all(timeout=1.0)
        assert _live(sid) == []
    finally:
        for pid in _live(sid):
            os.kill(pid, signal.SIGKILL)


def test_stack_down_after_the_supervisor_died_kills_what_outlives_the_leader(
    tmp_path: Path,
) -> None:
    # `relearn stack down` when `make run` was killed: only the pid file is left.
    pid_file = tmp_path / "pids.json"
    marker = tmp_path / "own_group"
    task = OWN_GROUP_TASK.format(marker=str(marker))
    service = Service(
        name="leader",
        command=["sh", "-c", f'{sys.executable} -c "{task}" & exec sleep 600'],
        env={"PATH": os.environ["PATH"]},
        log_file=tmp_path / "leader.log",
    )
    Supervisor(pid_file).start(service)
    assert service.process is not None
    sid = service.process.pid
    deadline = time.monotonic() + 20
    while not marker.exists() or len(_live(sid)) < 2:
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    try:
        assert stop_recorded(pid_file, timeout=1.0) == ["leader"]
        service.process.wait(5)
        assert _live(sid) == []
        assert not pid_file.exists()
    finally:
        for pid in _live(sid):
            os.kill(pid, signal.SIGKILL)


def test_stack_down_leaves_alone_a_process_that_only_shares_a_recorded_pid(tmp_path: Path) -> None:
    # After a reboot the pid file's pid may name someone else's session leader.
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        pid_file = tmp_path / "pids.json"
        pid_file.write_text(json.dumps({"mlflow": [stranger.pid, 1.0]}))  # started in 1970
        assert stop_recorded(pid_file, timeout=1.0) == []
        assert stranger.poll() is None
        assert not pid_file.exists()
    finally:
        stranger.kill()
        stranger.wait(5)


# A `relearn stack up`: records itself as the owner, stops in order on SIGTERM.
OWNER = """
import pathlib, signal, sys, time
from relearn_dev.stack.supervisor import record_owner

def orderly(*_):
    pathlib.Path({marker!r}).write_text("stopped in order")
    sys.exit(0)

signal.signal(signal.SIGTERM, orderly)
record_owner(pathlib.Path({owner!r}))
time.sleep(600)
"""


def test_stack_down_asks_a_running_stack_up_to_stop_instead_of_killing_its_services(
    tmp_path: Path,
) -> None:
    owner_file, marker = tmp_path / "owner.json", tmp_path / "marker"
    code = OWNER.format(marker=str(marker), owner=str(owner_file))
    owner = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while not owner_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stop_owner(owner_file, timeout=30) == owner.pid
        assert owner.wait(5) == 0
        assert marker.read_text() == "stopped in order"
    finally:
        owner.kill()
        owner.wait(5)


def test_an_owner_that_died_is_forgotten(tmp_path: Path) -> None:
    owner_file = tmp_path / "owner.json"
    record_owner(owner_file)
    pid, _ = json.loads(owner_file.read_text())
    owner_file.write_text(json.dumps([pid, 1.0]))  # this pid, but a process started in 1970
    assert stop_owner(owner_file) is None
    assert not owner_file.exists()
    assert stop_owner(owner_file) is None  # nothing recorded at all


def test_a_second_stack_up_says_the_stack_already_runs(tmp_path: Path) -> None:
    """`make run` twice: not "port ... is already in use", which sends a user hunting for a
    stranger on their port."""
    from relearn.settings import StackError, load_settings
    from relearn_dev.stack.services import Stack, owner_file

    settings = load_settings({"RELEARN_HOME": str(tmp_path)})
    record_owner(owner_file(settings))  # this process plays the running `relearn stack up`
    with pytest.raises(StackError, match=r"is already running \(`relearn stack up`, pid \d+\)"):
        Stack(settings, tmp_path).check_ports(airflow=True)
