// The Relearn page: picks a model, reads its JSON, renders every section, refreshes every 30 s.
import { h, when } from "./dom.js";
import * as sections from "./sections.js";

const REFRESH_MS = 30000;
// While a request of the model is on its way (filed, pending, processing): every 5 s.
const FOLLOW_MS = 5000;
const OPEN_REQUESTS = new Set(["pending", "processing"]);
const api = new URL("api/", document.baseURI);
// The page is served at <airflow>/relearn/ui/: Airflow's own pages are two levels up.
const airflowRoot = new URL("../../", document.baseURI).pathname;
const state = { model: null, bucket: "hour", session: null, timer: null, notice: "", following: 0 };

async function getJson(path, options = {}) {
  const response = await fetch(new URL(path, api), {
    credentials: "same-origin",
    ...options,
    headers: { Accept: "application/json", ...(options.headers || {}) },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail ? JSON.stringify(body.detail) : `HTTP ${response.status}`);
  return body;
}

function status(text, error = false) {
  const line = document.getElementById("status");
  line.textContent = text;
  line.className = error ? "error" : "muted";
}

async function retrain(form) {
  const feedback = form.querySelector("[data-testid=retrain-feedback]");
  const data = new FormData(form);
  form.querySelector("button").disabled = true;
  try {
    const filed = await getJson(`models/${encodeURIComponent(state.model)}/retrain`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ reason: data.get("reason") || null, priority: data.get("priority") }),
    });
    state.notice = `Filed through ${filed.dag_id} run ${filed.dag_run_id}: the request appears below once it runs.`;
    state.following = Date.now() + 120000; // until the new request shows up (2 min at most)
    await refresh();
  } catch (error) {
    feedback.textContent = `Could not file the request: ${error.message}`;
    form.querySelector("button").disabled = false;
  }
}

function render(page) {
  const main = document.getElementById("page");
  const open = [...main.querySelectorAll("details[open]")].map((d) => d.dataset.key);
  // One render function per section (sections.js), in page order: a new section of the
  // read model (relearn.dashboard.page.ModelPage) gets its function here.
  main.replaceChildren(
    sections.deployment(page),
    sections.health(page),
    sections.alerts(page),
    sections.analysis(page),
    sections.trends(page),
    sections.abtest(page, airflowRoot),
    sections.requests(page, state.session, retrain),
    sections.runs(page, airflowRoot),
  );
  for (const key of open) main.querySelector(`details[data-key="${key}"]`)?.setAttribute("open", "");
  main.querySelector("[data-testid=retrain-feedback]").textContent = state.notice;
  main.dataset.model = page.model;
  main.dataset.generatedAt = page.generated_at;
}

async function refresh() {
  clearTimeout(state.timer);
  let delay = REFRESH_MS;
  try {
    const page = await getJson(`models/${encodeURIComponent(state.model)}?bucket=${state.bucket}`);
    const open = page.requests.some((r) => OPEN_REQUESTS.has(r.status));
    if (open) state.following = 0; // the filed request is in the queue now: follow it
    if (open || Date.now() < state.following) delay = FOLLOW_MS;
    render(page);
    status(`${page.model} · updated ${when(page.generated_at)} · refreshes every ${delay / 1000} s`);
  } catch (error) {
    status(`Could not load ${state.model}: ${error.message}`, true);
  } finally {
    state.timer = setTimeout(refresh, delay);
  }
}

async function start() {
  try {
    state.session = await getJson("session");
    const models = await getJson("models");
    if (!models.length) return status("No model is configured (relearn.yaml).", true);
    const wanted = new URLSearchParams(location.search).get("model");
    state.model = models.some((m) => m.name === wanted) ? wanted : models[0].name;
    const picker = document.getElementById("model");
    picker.replaceChildren(...models.map((m) =>
      h("option", { value: m.name, selected: m.name === state.model }, m.name)));
    picker.hidden = models.length < 2;
    picker.addEventListener("change", () => { state.model = picker.value; state.notice = ""; refresh(); });
    const bucket = document.getElementById("bucket");
    bucket.addEventListener("change", () => { state.bucket = bucket.value; refresh(); });
    document.getElementById("user").textContent = state.session.user;
    await refresh();
  } catch (error) {
    status(`Could not start: ${error.message}`, true);
  }
}

// Airflow shows the page in a sandboxed iframe (no top navigation, no pop-ups): a link is
// followed by a twin in the same-origin top document, which may navigate and open tabs.
document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a[target]");
  if (!anchor || window.top === window) return;
  try {
    const twin = window.top.document.createElement("a");
    Object.assign(twin, { href: anchor.href, target: anchor.target, rel: "noopener" });
    window.top.document.body.append(twin);
    twin.click();
    twin.remove();
    event.preventDefault();
  } catch {
    // The top document is not reachable: leave the link to the browser.
  }
});

start();
