"""The Relearn page in Airflow's UI, in real Chromium, on a running stack.

Airflow's services start as ``make run`` starts them (api-server, scheduler, dag-processor,
triggerer), every DAG paused but the two that serve Retrain now (``request_retraining``
files the request, ``manual_retraining`` serves it). A model of its own (``page_model``, an
sklearn copy of churn) has a few hours of traffic and a health check. The test logs in
through Airflow's login form, opens the page from Airflow's navigation, checks that its
numbers equal the database's and the registry's, clicks Retrain now and waits until the
request it filed is ``completed`` on the page. Screenshots go to ``.relearn/screenshots/``.

Debian's chromium (``make chromium``) is driven by playwright; no browser is downloaded.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from relearn.registry import CHAMPION, aliases, registry_client
from relearn.services import Services
from relearn.store.db import transaction
from tests.conftest import ROOT
from tests.integration.traffic import log_traffic

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MODEL = "page_model"
SERVING_DAGS = {"request_retraining", "manual_retraining"}
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / ".relearn" / "screenshots"
STACK_LOGS = ROOT / ".relearn" / "browser-test-logs"  # the test stack's logs, kept
WAIT_MS = 300_000  # for the request to be filed, claimed and retrained (2 shared cores)


@pytest.fixture(scope="module")
def page_config(tmp_path_factory) -> Iterator:
    """The session's config plus ``page_model``, for this process and the stack it starts."""
    import yaml

    from relearn.config import load_config

    raw = yaml.safe_load((ROOT / "relearn.yaml").read_text())
    churn = next(m for m in raw["models"] if m["name"] == "churn")
    raw["models"].append({**churn, "name": MODEL, "kind": "sklearn_logreg"})
    path = tmp_path_factory.mktemp("page") / "relearn.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELEARN_CONFIG", str(path))
        yield load_config(path).model(MODEL)


@pytest.fixture(scope="module")
def demo_data(page_config, database_url, tracking_uri) -> str:
    """v1 as champion, six hours of traffic with outcomes (inputs shifted in the last two),
    one health check, one drift check (dry run: it asks for nothing) and one daily error
    analysis; the champion."""
    from relearn.analysis.run import run_daily
    from relearn.bootstrap import bootstrap_model
    from relearn.drift.monitor import CheckOptions, check
    from relearn.health import check_model_health

    services = Services(database_url, tracking_uri)
    champion = bootstrap_model(services, page_config).version
    now = datetime.now(UTC).replace(microsecond=0)
    shift, start = now - timedelta(hours=2), now - timedelta(hours=6)
    log_traffic(page_config, database_url, tracking_uri, start=start, end=shift)
    log_traffic(page_config, database_url, tracking_uri, start=shift, end=now, covariate_shift=1.5)
    check_model_health(services, page_config, now=now, trigger_key="page-test-health")
    options = CheckOptions.from_config(page_config, dry_run=True)
    check(services, page_config, options, trigger_key="page-test-drift", now=now)
    run_daily(services, page_config, until=now, analysis_key="page-test-analysis")
    return str(champion)


def _pause_all_but(dag_ids: set[str]) -> None:
    """Register the bundle's DAGs with only ``dag_ids`` unpaused (the others would retrain and
    run checks on the session's data meanwhile)."""
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
        session.execute(update(DagModel).values(is_paused=DagModel.dag_id.not_in(dag_ids)))


@pytest.fixture(scope="module")
def airflow(stack, demo_data) -> Iterator[tuple[str, str, str]]:
    """Airflow's services, stopped afterwards: (base URL, user, password)."""
    from relearn_dev.stack.services import AIRFLOW_USER, Stack, airflow_password

    _pause_all_but(SERVING_DAGS)
    running = Stack(stack.settings, ROOT)  # its own supervisor: down() stops only Airflow
    try:
        running.start_airflow()
        yield stack.settings.airflow_url, AIRFLOW_USER, airflow_password(stack.settings)
    finally:
        running.down(keep_database=True)
        # The throw-away stack's home goes with the session: keep its logs for a diagnosis.
        shutil.rmtree(STACK_LOGS, ignore_errors=True)
        shutil.copytree(stack.settings.log_dir, STACK_LOGS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def _call(
    url: str, *, method: str = "GET", token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url,
        method=method,
        headers=headers,
        data=None if body is None else json.dumps(body).encode(),
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def _token(role: str) -> str:
    """A JWT of a simple-auth-manager user of ``role``, signed as the api-server signs them."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return SimpleAuthManager().generate_jwt(SimpleAuthManagerUser(username=role, role=role))


def test_every_route_needs_a_user_and_retrain_now_needs_trigger_rights(airflow, demo_data):
    base, _, _ = airflow
    api = f"{base}/relearn/ui/api"
    assert _call(f"{api}/models")[0] == 401
    assert _call(f"{base}/relearn/ui/")[0] == 401
    viewer = _token("viewer")
    assert _call(f"{api}/models/{MODEL}", token=viewer)[0] == 200
    assert _call(f"{api}/session", token=viewer)[1]["can_request_retraining"] is False
    retrain = f"{api}/models/{MODEL}/retrain"
    assert _call(retrain, method="POST", token=viewer, body={"priority": "low"})[0] == 403
    assert _call(f"{api}/models/nope", token=viewer)[0] == 404


def _row(database_url: str, sql: str, *params: Any) -> tuple:
    with transaction(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _login(page: Any, base: str, user: str, password: str) -> None:
    """Airflow's own login form; its session cookie then authenticates the page's app."""
    page.goto(f"{base}/plugin/relearn")
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.locator("input[name=password]").press("Enter")
    page.wait_for_url(f"{base}/plugin/relearn", timeout=60_000)


def test_the_page_shows_the_database_and_files_a_retraining(
    airflow, browser, demo_data, database_url, tracking_uri
):
    from playwright.sync_api import expect

    base, user, password = airflow
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    _login(page, base, user, password)
    frame = page.frame_locator("iframe[title=Relearn]")
    frame.locator("[data-testid=model-select]").select_option(MODEL)
    expect(frame.locator("#page")).to_have_attribute("data-model", MODEL, timeout=60_000)

    champion = aliases(registry_client(tracking_uri), MODEL)[CHAMPION]
    assert demo_data == str(champion)
    expect(frame.locator("[data-testid=champion-version]")).to_have_text(f"v{champion}")
    status, score = _row(
        database_url,
        "SELECT status, score FROM health_checks WHERE model_name = %s "
        "ORDER BY checked_at DESC LIMIT 1",
        MODEL,
    )
    expect(frame.locator("[data-testid=health-status]")).to_have_text(status)
    expect(frame.locator("[data-testid=health-score]")).to_have_text(f"{score:.2f}")
    [error_rate] = _row(
        database_url,
        "SELECT error_rate FROM error_analyses WHERE model_name = %s AND scope = 'daily' "
        "ORDER BY analysed_at DESC LIMIT 1",
        MODEL,
    )
    expect(frame.locator("[data-testid=analysis-error-rate]")).to_have_text(
        f"{100 * error_rate:.1f} %"
    )
    volume = frame.locator("[data-testid=volume-total]")
    [logged] = _row(
        database_url,
        "SELECT count(*) FROM prediction_log WHERE model_name = %s "
        "AND predicted_at >= %s AND predicted_at < %s",
        MODEL,
        volume.get_attribute("data-since"),
        volume.get_attribute("data-until"),
    )
    assert logged > 0
    expect(volume).to_have_text(f"{logged:,}")
    [runs] = _row(
        database_url, "SELECT count(*) FROM model_retraining_runs WHERE model_name = %s", MODEL
    )
    expect(frame.locator("#runs tbody tr")).to_have_count(runs)

    reason = f"browser test {uuid.uuid4()}"
    form = frame.locator("[data-testid=retrain-form]")
    form.locator("input[name=reason]").fill(reason)
    form.locator("select[name=priority]").select_option("high")
    form.locator("button").click()
    expect(frame.locator("[data-testid=retrain-feedback]")).to_contain_text("request_retraining")
    row = frame.locator("#requests tbody tr", has_text=reason)
    try:
        expect(row.locator("[data-testid=request-status]")).to_have_text(
            "completed", timeout=WAIT_MS
        )
    except AssertionError:
        page.screenshot(path=str(SCREENSHOTS / "relearn-retrain-now-failed.png"), full_page=True)
        raise
    page.screenshot(path=str(SCREENSHOTS / "relearn-in-airflow.png"))
    request_status, run_id = _row(
        database_url,
        "SELECT status, retraining_run_id::text FROM model_retraining_requests WHERE reason = %s",
        reason,
    )
    assert request_status == "completed" and run_id
    expect(frame.locator(f"#runs tbody tr[data-run-id='{run_id}']")).to_have_count(1)

    direct = context.new_page()  # the page's own URL, on the same session cookie
    direct.goto(f"{base}/relearn/ui/?model={MODEL}")
    expect(direct.locator("[data-testid=request-status]").first).to_be_visible(timeout=60_000)
    direct.screenshot(path=str(SCREENSHOTS / "relearn-page.png"), full_page=True)
    context.close()
