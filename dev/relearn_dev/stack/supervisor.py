"""Start long-running processes, wait until they answer, and stop them all together."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil

from relearn.settings import StackError

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class Service:
    """A process of the stack; ready when ``health_url`` answers 200 and, for servers without
    an HTTP endpoint (Redis, Celery workers), once ``ready_line`` appears in its log."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_file: Path
    health_url: str | None = None
    ready_line: str | None = None
    ready_timeout: float = 120.0
    process: subprocess.Popen | None = field(default=None, repr=False)
    log_offset: int = field(default=0, repr=False)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


class Supervisor:
    """Owns the processes it started; ``stop_all`` ends every one of them (process groups)."""

    def __init__(self, pid_file: Path | None = None) -> None:
        self.services: list[Service] = []
        self.pid_file = pid_file

    def _write_pids(self) -> None:
        """Remember process groups so `relearn stack down` can stop a stack left behind."""
        if self.pid_file is None:
            return
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        pids = {}
        for service in self.services:
            if service.process is None:
                continue
            with contextlib.suppress(psutil.NoSuchProcess):  # ended already: nothing to stop
                started = psutil.Process(service.process.pid).create_time()
                pids[service.name] = [service.process.pid, started]
        self.pid_file.write_text(json.dumps(pids))

    def start(self, service: Service) -> None:
        service.log_file.parent.mkdir(parents=True, exist_ok=True)
        log_handle = service.log_file.open("ab")
        service.log_offset = log_handle.tell()  # ready_line counts from this start on
        log.info("starting %s (log: %s)", service.name, service.log_file)
        service.process = subprocess.Popen(
            service.command,
            env=service.env,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log_handle.close()
        self.services.append(service)
        self._write_pids()

    def restart(self, service: Service) -> None:
        """Start a service whose process ended (killed, crashed) again, and wait for it."""
        if service.process is not None and service.process.poll() is None:
            raise StackError(f"{service.name} is still running")
        self.services.remove(service)
        self.start(service)
        self.wait_ready(service)

    def wait_ready(self, service: Service) -> None:
        deadline = time.monotonic() + service.ready_timeout
        while (service.health_url and not http_ok(service.health_url)) or not _logged(service):
            self._raise_if_dead(service)
            if time.monotonic() > deadline:
                raise StackError(
                    f"{service.name} did not become ready within {service.ready_timeout:.0f}s "
                    f"(see {service.log_file})"
                )
            time.sleep(0.5)
        self._raise_if_dead(service)
        log.info("%s is ready", service.name)

    @staticmethod
    def _raise_if_dead(service: Service) -> None:
        assert service.process is not None
        code = service.process.poll()
        if code is not None:
            tail = _tail(service.log_file)
            raise StackError(
                f"{service.name} exited with code {code} (see {service.log_file}):\n{tail}"
            )

    def first_exited(self) -> Service | None:
        """The first service whose process has ended, if any (the stack is then broken)."""
        for service in self.services:
            if service.process is not None and service.process.poll() is not None:
                return service
        return None

    def stop_all(self, timeout: float = 20.0) -> None:
        """SIGTERM every service's process group, then SIGKILL what is left of its session.

        A service outlives its leader: a scheduler stops before the LocalExecutor workers it
        forked, and Airflow runs each task in a process group of its own, so neither waiting
        for the leader nor killing its group reached a task that kept running. Every process
        a service starts stays in the session it leads (``start_new_session``).
        """
        for service in reversed(self.services):
            _signal_group(service, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for service in reversed(self.services):
            assert service.process is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(max(0.1, deadline - time.monotonic()))
            _end_session(service.name, service.process.pid, deadline)
            service.process.wait(5)
            log.info("stopped %s", service.name)
        self.services.clear()
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)


def record_owner(path: Path) -> None:
    """Remember this process as the owner of the stack, so that `relearn stack down` asks it
    to stop (its own orderly shutdown) instead of killing its services behind its back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")  # a reader never sees a half-written file
    partial.write_text(json.dumps([os.getpid(), psutil.Process().create_time()]))
    partial.replace(path)


def running_owner(path: Path) -> psutil.Process | None:
    """The recorded owner of the stack if it still runs (a stale record is removed)."""
    try:
        pid, started = json.loads(path.read_text())
        owner = psutil.Process(pid)
        if abs(owner.create_time() - started) >= 1:  # the pid names another process now
            raise psutil.NoSuchProcess(pid)
    except (FileNotFoundError, ValueError, TypeError, psutil.NoSuchProcess):
        path.unlink(missing_ok=True)  # nothing recorded, unreadable, or its owner died
        return None
    return owner


def stop_owner(path: Path, timeout: float = 180.0) -> int | None:
    """SIGTERM the recorded owner, if it still runs, and wait until it has stopped its stack
    (its own shutdown waits for every service in turn, so this allows minutes).

    :returns: the owner's pid; None when no owner runs (none recorded, or it died).
    :raises StackError: it did not stop within ``timeout`` seconds.
    """
    owner = running_owner(path)
    if owner is None:
        return None
    pid = owner.pid
    log.info("asking `relearn stack up` (pid %d) to stop everything it started", pid)
    owner.terminate()
    try:
        owner.wait(timeout)
    except psutil.TimeoutExpired:
        raise StackError(
            f"`relearn stack up` (pid {pid}) did not stop within {timeout:g} s: see its "
            f"output; `kill -9 {pid}` and `relearn stack down` again stop what it left"
        ) from None
    return pid


def stop_recorded(pid_file: Path, timeout: float = 20.0) -> list[str]:
    """Stop the services recorded by a supervisor that died, as ``stop_all`` does (SIGTERM to
    each group, then SIGKILL to what is left of its session); returns the names stopped."""
    try:
        recorded_pids = json.loads(pid_file.read_text())
    except FileNotFoundError:  # nothing recorded, or its supervisor stopped meanwhile
        return []
    stopped = {}
    for name, recorded in recorded_pids.items():
        pid, started = recorded if isinstance(recorded, list) else (recorded, None)
        if not _still_ours(pid, started):
            log.info("%s (pid %d) is gone; pid %d is another process now", name, pid, pid)
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if _session_members(pid):
            stopped[name] = pid
    deadline = time.monotonic() + timeout
    for name, pid in stopped.items():
        _end_session(name, pid, deadline)
    pid_file.unlink(missing_ok=True)
    return list(stopped)


def _end_session(name: str, sid: int, deadline: float) -> None:
    """Let the session's processes end on the SIGTERM they got until ``deadline``, then
    SIGKILL what is left and wait for it to go."""
    if _wait_session_gone(sid, deadline):
        return
    log.warning("%s did not stop in time; killing its processes", name)
    _kill_session(sid)
    _wait_session_gone(sid, time.monotonic() + 5)


def _still_ours(pid: int, started: float | None) -> bool:
    """Whether the recorded session leader is the process that was started (not a later one
    given the same pid, after a reboot). A leader that is gone leaves only its own session's
    processes with that id: Linux reuses no pid a live session still uses."""
    if started is None:  # a pid file written before start times were recorded
        return True
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1
    except psutil.NoSuchProcess:
        return True


def _signal_group(service: Service, sig: signal.Signals) -> None:
    """Signal the service's process group, even once its leader has exited."""
    if service.process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(service.process.pid, sig)


def _session_members(sid: int) -> list[psutil.Process]:
    """The live (not zombie) processes of a session, whatever their process group."""
    members = []
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, OSError):  # ended meanwhile
            if os.getsid(process.pid) == sid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process)
    return members


def _wait_session_gone(sid: int, deadline: float) -> bool:
    """Wait until no live process is left in the session; False if some still are at deadline."""
    while _session_members(sid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _kill_session(sid: int) -> None:
    for process in _session_members(sid):
        with contextlib.suppress(psutil.Error):
            process.kill()


def _logged(service: Service) -> bool:
    """True when the service has no ``ready_line`` or its log shows it since this start."""
    if service.ready_line is None:
        return True
    try:
        with service.log_file.open("rb") as handle:
            handle.seek(service.log_offset)
            return service.ready_line.encode() in handle.read()
    except OSError:
        return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
