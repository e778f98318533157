"""Tasks that wait, on a running Airflow (api-server, scheduler, dag-processor, triggerer,
LocalExecutor, started as ``make run`` starts them) and driven through its REST API.

Human approval: a model of its own (``hitl_model``, an sklearn copy of churn's config) keeps
this module's promotions away from the session's ``churn``. A test is brought to the state the
hourly check leaves it in when it passed and approval is required (``await_approval`` through the
deployer) and announced on the approval Asset through the REST API, as ``ab_promotion``
announces it. The scheduler starts ``ab_approval``, whose task parks in ``awaiting_input``; the
test finds it through the REST API, answers it through the HITL endpoint and checks that the
promotion (or rollback) really happened.

The request sensor's timeout: ``manual_retraining`` with a 15-second wait
(``RELEARN_TIMEOUT_REQUEST_WAIT_MINUTES``) and no request ends its wait as skipped.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from relearn.abtest import policy
from relearn.abtest.aliases import PREVIOUS_CHAMPION
from relearn.abtest.decision import apply_decision
from relearn.abtest.deploy import start_test
from relearn.registry import CHALLENGER, CHAMPION, aliases, registry_client
from relearn.services import Services
from relearn.store import abtests
from relearn.store.db import transaction
from tests.conftest import ROOT
from tests.integration.traffic import register_copy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MODEL = "hitl_model"
DAG_ID = "ab_approval"
TASK_ID = "approve_promotion"
WAIT = 300.0  # seconds for the scheduler to start, run or resume a task (2 shared cores)
REQUEST_WAIT_MINUTES = "0.25"  # manual_retraining's sensor gives up after 15 s


class Api:
    """The Airflow REST API of the running stack, logged in as the stack's admin."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        token = self._call("POST", "/auth/token", {"username": username, "password": password})
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}

    def _call(self, method: str, path: str, body: dict | None = None, headers=None) -> Any:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def get(self, path: str) -> Any:
        return self._call("GET", "/api/v2" + path, headers=self.headers)

    def send(self, method: str, path: str, body: dict) -> Any:
        return self._call(method, "/api/v2" + path, body, headers=self.headers)


def _until(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := probe()) is not None:
            return found
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def hitl_config(tmp_path_factory) -> Iterator:
    """The session's config plus ``hitl_model``, and a short request wait, for this process and
    the stack it starts."""
    import yaml

    from relearn.config import load_config

    raw = yaml.safe_load((ROOT / "relearn.yaml").read_text())
    churn = next(m for m in raw["models"] if m["name"] == "churn")
    raw["models"].append({**churn, "name": MODEL, "kind": "sklearn_logreg"})
    path = tmp_path_factory.mktemp("hitl") / "relearn.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELEARN_CONFIG", str(path))
        patch.setenv("RELEARN_TIMEOUT_REQUEST_WAIT_MINUTES", REQUEST_WAIT_MINUTES)
        yield load_config(path).model(MODEL)


def _pause_every_dag_but_approval() -> None:
    """Register the bundle's DAGs paused, so the scheduler runs only ``ab_approval`` (the others
    would retrain and run A/B checks on the session's data meanwhile)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        sync_bag_to_db(bag, bundle.name, bundle.version)
    with create_session() as session:
        session.execute(update(DagModel).values(is_paused=DagModel.dag_id != DAG_ID))


@pytest.fixture(scope="module")
def airflow_api(stack, hitl_config) -> Iterator[Api]:
    """Airflow's services started the way ``make run`` starts them, stopped afterwards."""
    from relearn_dev.stack.services import AIRFLOW_USER, Stack, airflow_password

    _pause_every_dag_but_approval()
    airflow = Stack(stack.settings, ROOT)  # its own supervisor: down() stops only Airflow
    try:
        airflow.start_airflow()
        yield Api(stack.settings.airflow_url, AIRFLOW_USER, airflow_password(stack.settings))
    finally:
        airflow.down(keep_database=True)


@pytest.fixture(scope="module")
def scheduler_log(airflow_api, settings) -> Path:
    return settings.log_dir / "airflow-scheduler.log"


@pytest.fixture(scope="module")
def hitl_champion(hitl_config, database_url, tracking_uri) -> str:
    from relearn.bootstrap import bootstrap_model

    return bootstrap_model(Services(database_url, tracking_uri), hitl_config).version


def _awaiting_approval(model_cfg, database_url, tracking_uri, champion: str) -> dict[str, str]:
    """A running test of a new challenger that passed and now waits for a human."""
    services = Services(database_url, tracking_uri)
    version = register_copy(model_cfg, tracking_uri, name=MODEL, source=champion)
    registry_client(tracking_uri).set_registered_model_alias(MODEL, CHALLENGER, version)
    now = datetime.now(UTC)
    started = start_test(
        services,
        model_cfg,
        now=now,
        trigger_key=f"hitl-start-{version}",
        version=version,
        by="test",
    )
    with transaction(database_url) as connection:
        test = abtests.get_test(connection, started.test_id)
    waiting = apply_decision(
        services,
        model_cfg,
        test,
        policy.Decision(policy.AWAIT_APPROVAL, test.traffic_percent, "passed: awaiting approval"),
        now=now,
        trigger_key=f"hitl-await-{version}",
        by="policy",
    )
    assert waiting.action == policy.AWAIT_APPROVAL
    return {"model": MODEL, "test_id": started.test_id, "version": version}


def _announce(api: Api, request: dict[str, str]) -> None:
    """What ``ab_promotion``'s ``request_approval`` task emits, through the REST API."""
    [asset] = api.get("/assets?uri_pattern=relearn://abtests/approval")["assets"]
    api.send("POST", "/assets/events", {"asset_id": asset["id"], "extra": request})


def _waiting_task(api: Api, request: dict[str, str]) -> dict:
    """The ``approve_promotion`` task instance asking about ``request``, once it waits."""

    def probe() -> dict | None:
        for run in api.get(f"/dags/{DAG_ID}/dagRuns?order_by=-start_date")["dag_runs"]:
            path = f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances"
            for ti in api.get(path)["task_instances"]:
                if ti["task_id"] != TASK_ID or ti["state"] != "awaiting_input":
                    continue
                hitl = api.get(f"{path}/{TASK_ID}/{ti['map_index']}/hitlDetails")
                if request["test_id"] in (hitl.get("body") or ""):
                    return ti
        return None

    return _until(f"{TASK_ID} awaiting input for test {request['test_id']}", probe)


def _parked(log_file: Path, ti: dict) -> None:
    """Wait until the scheduler has seen the parking worker exit, as a human reading the
    question would. Answering sooner races Airflow 3.3.2: the parked worker's late "success"
    event reaches the scheduler while the answer already runs the task again, and the
    scheduler retries it (a second try that asks again; seen in this test's first version)."""
    marks = ("TaskInstance Finished:", f"ti_id={ti['id']}, ", "state=awaiting_input")

    def probe() -> bool | None:
        lines = log_file.read_text(errors="replace").splitlines()
        return True if any(all(m in line for m in marks) for line in lines) else None

    _until(f"the scheduler to see {TASK_ID} parked", probe)


def _answer(api: Api, ti: dict, option: str) -> None:
    path = f"/dags/{DAG_ID}/dagRuns/{ti['dag_run_id']}/taskInstances/{TASK_ID}/{ti['map_index']}"
    answered = api.send("PATCH", f"{path}/hitlDetails", {"chosen_options": [option]})
    assert answered["chosen_options"] == [option]


def _finished(api: Api, ti: dict) -> str:
    path = f"/dags/{DAG_ID}/dagRuns/{ti['dag_run_id']}/taskInstances/{TASK_ID}/{ti['map_index']}"

    def probe() -> str | None:
        state = api.get(path)["state"]
        return state if state in ("success", "failed", "skipped") else None

    return _until(f"{TASK_ID} to finish after the answer", probe)


def _test_status(database_url: str, test_id: str) -> tuple[str, str]:
    with transaction(database_url) as connection:
        test = abtests.get_test(connection, test_id)
    return test.status, test.approval


def test_approve_promotes_the_challenger(
    airflow_api, scheduler_log, hitl_config, hitl_champion, database_url, tracking_uri
):
    request = _awaiting_approval(hitl_config, database_url, tracking_uri, hitl_champion)
    _announce(airflow_api, request)
    ti = _waiting_task(airflow_api, request)
    assert _test_status(database_url, request["test_id"]) == ("running", "requested")
    _parked(scheduler_log, ti)

    _answer(airflow_api, ti, "Approve")
    assert _finished(airflow_api, ti) == "success"
    assert _test_status(database_url, request["test_id"]) == ("promoted", "approved")
    current = aliases(registry_client(tracking_uri), MODEL)
    assert current[CHAMPION] == request["version"]
    assert current[PREVIOUS_CHAMPION] == hitl_champion
    assert CHALLENGER not in current


def test_reject_rolls_the_challenger_back(
    airflow_api, scheduler_log, hitl_config, database_url, tracking_uri
):
    client = registry_client(tracking_uri)
    champion = aliases(client, MODEL)[CHAMPION]
    request = _awaiting_approval(hitl_config, database_url, tracking_uri, champion)
    _announce(airflow_api, request)
    ti = _waiting_task(airflow_api, request)
    _parked(scheduler_log, ti)

    _answer(airflow_api, ti, "Reject")
    # ApprovalOperator's Reject skips what follows; the task itself succeeds, having rolled back.
    assert _finished(airflow_api, ti) == "success"
    assert _test_status(database_url, request["test_id"]) == ("rolled_back", "rejected")
    current = aliases(client, MODEL)
    assert current[CHAMPION] == champion
    assert CHALLENGER not in current


def test_the_request_sensor_gives_up_when_its_timeout_passes(airflow_api):
    """Before: the sensor deferred without ``timeout=``, so it waited forever (7 days in the
    DAG, ignored). Now the triggerer's timeout ends the wait and ``soft_fail`` skips it."""
    dag = "manual_retraining"
    # A continuous DAG runs one at a time: a run another module's scheduler left waiting (with
    # the default 7-day sensor timeout) would hold this test's run back. End those first.
    for run in airflow_api.get(f"/dags/{dag}/dagRuns")["dag_runs"]:
        if run["state"] in ("queued", "running"):
            path = f"/dags/{dag}/dagRuns/{run['dag_run_id']}"
            airflow_api.send("PATCH", path, {"state": "failed"})
    unpaused = datetime.now(UTC)
    airflow_api.send("PATCH", f"/dags/{dag}", {"is_paused": False})
    try:

        def probe() -> dict | None:
            for run in airflow_api.get(f"/dags/{dag}/dagRuns")["dag_runs"]:
                if run["run_type"] != "scheduled":  # e.g. dag.test() runs of other modules
                    continue
                # Runs queued before this test belong to other modules' schedulers (the
                # browser test's served a request); only a run of this wait counts.
                queued = run.get("queued_at")
                if queued is None or datetime.fromisoformat(queued) < unpaused:
                    continue
                path = f"/dags/{dag}/dagRuns/{run['dag_run_id']}/taskInstances/wait_for_request"
                ti = airflow_api.get(path)
                if ti["state"] in ("skipped", "success", "failed", "up_for_retry"):
                    return ti
            return None

        waited = _until("manual_retraining's sensor to end its wait", probe)
    finally:
        airflow_api.send("PATCH", f"/dags/{dag}", {"is_paused": True})
    assert waited["state"] == "skipped", waited
    assert waited["try_number"] == 1
