// One render function per section of a model's page; each returns a <section>.
import { barChart, barList, lineChart } from "./charts.js";
import { badge, empty, fmt, h, link, pct, table, when } from "./dom.js";

const section = (id, title, ...body) =>
  h("section", { id, "data-testid": id }, h("h2", {}, title), ...body);

const metricList = (entries) =>
  h("dl", { class: "metrics" }, entries.map(([k, v]) => [h("dt", {}, k), h("dd", {}, fmt(v))]));

// The headline scores of a version's run; its other metrics fold away.
const HEADLINE = /(^|_)(accuracy|f1|f1_macro|precision_macro|recall_macro)$/;

function versionMetrics(alias, metrics) {
  const entries = Object.entries(metrics);
  const rest = entries.filter(([k]) => !HEADLINE.test(k));
  return [
    metricList(entries.filter(([k]) => HEADLINE.test(k))),
    rest.length
      ? h("details", { "data-key": `metrics-${alias}` }, h("summary", {}, `${rest.length} more metrics`), metricList(rest))
      : null,
  ];
}

export function deployment(page) {
  const { aliases, history } = page.deployment;
  const cards = aliases.map((a) =>
    h("div", { class: "card", "data-alias": a.alias },
      h("div", { class: "card-title" }, a.alias),
      h("div", { class: "big", "data-testid": `${a.alias}-version` }, link(a.version_url, `v${a.version}`)),
      h("div", { class: "muted" }, `registered ${when(a.registered_at)}`, a.run_url ? " · " : "",
        link(a.run_url, a.run_url ? "MLflow run" : "")),
      versionMetrics(a.alias, a.metrics)));
  return section("deployment", "Deployment",
    cards.length ? h("div", { class: "cards" }, cards) : empty("No version is registered yet."),
    h("h3", {}, "Alias history"),
    history.length
      ? table(["when", "alias", "version", "was", "by", "why"], history.map((c) =>
        h("tr", {}, h("td", {}, when(c.changed_at)), h("td", {}, c.alias),
          h("td", {}, c.version === null ? "removed" : `v${c.version}`),
          h("td", {}, c.previous_version ? `v${c.previous_version}` : "–"),
          h("td", {}, c.changed_by), h("td", {}, c.reason))))
      : empty("No alias has moved yet."));
}

export function health(page) {
  const { latest, history } = page.health;
  if (!latest) return section("health", "Health", empty("model_health has not checked this model yet."));
  const known = new Set(["reasons"]);
  const extra = Object.fromEntries(Object.entries(latest.details).filter(([k]) => !known.has(k)));
  return section("health", "Health",
    h("p", {}, h("span", { "data-testid": "health-status" }, badge(latest.status)),
      ` checked ${when(latest.checked_at)}`, latest.champion_version ? ` · champion v${latest.champion_version}` : ""),
    latest.reasons.length
      ? h("ul", { class: "reasons", "data-testid": "health-reasons" }, latest.reasons.map((r) => h("li", {}, r)))
      : null,
    h("details", { "data-key": "health-details" }, h("summary", {}, "details of the latest check"),
      h("pre", {}, JSON.stringify(extra, null, 2))),
    h("h3", {}, "History"),
    h("div", { class: "strip" }, history.map((c) =>
      h("span", { class: `cell ${c.status}`, title: `${when(c.checked_at)}: ${c.status}` }))));
}

export function runs(page, airflowRoot) {
  if (!page.runs.length) return section("runs", "Retraining runs", empty("No retraining run yet."));
  const rows = page.runs.map((r) =>
    h("tr", { "data-run-id": r.id },
      h("td", {}, when(r.created_at)),
      h("td", { "data-testid": "run-status" }, badge(r.status || "unknown")),
      h("td", {}, r.source || "–"),
      h("td", {}, fmt(r.holdout.accuracy)), h("td", {}, fmt(r.holdout.precision_macro)),
      h("td", {}, fmt(r.holdout.recall_macro)), h("td", {}, fmt(r.holdout.f1_macro)),
      h("td", {}, fmt(r.dataset_size)),
      h("td", {}, r.window_start ? `${when(r.window_start)} → ${when(r.window_end)}` : when(r.window_end)),
      h("td", {}, r.blessed === null || r.blessed === undefined ? "–" : badge(r.blessed ? "blessed" : "rejected"),
        r.gate_reasons.length ? h("ul", { class: "reasons" }, r.gate_reasons.map((x) => h("li", {}, x))) : null,
        r.outcome ? h("div", { class: "muted" }, r.outcome) : null,
        r.error_message ? h("div", { class: "error" }, r.error_message) : null),
      h("td", {}, r.model_version ? `v${r.model_version}` : "–"),
      h("td", {}, link(r.mlflow_run_url, "MLflow"), " ",
        r.airflow_run_path ? link(airflowRoot + r.airflow_run_path, "task logs", true) : null)));
  return section("runs", "Retraining runs",
    table(["created", "status", "source", "accuracy", "precision", "recall", "F1", "rows", "window",
      "gate", "version", "links"], rows, { class: "runs" }));
}

const pointsOf = (points, key) => points.map((p) => ({ x: p.start, y: p[key] }));

export function trends(page) {
  const t = page.trends;
  const arms = Object.entries(t.arms);
  const total = arms.reduce((sum, [, points]) => sum + points.reduce((n, p) => n + p.predictions, 0), 0);
  const bucketMs = t.bucket === "day" ? 86400000 : 3600000;
  const lines = (key) => arms.map(([name, points]) => ({ name, points: pointsOf(points, key) }));
  const drift = t.drift.map((d) => ({ x: d.checked_at, y: d.score }));
  const threshold = t.drift.length ? t.drift[t.drift.length - 1].threshold : null;
  return section("trends", "Trends",
    h("p", { class: "muted" }, `${t.bucket === "day" ? "Daily" : "Hourly"} since ${when(t.since)}: `,
      h("strong", { "data-testid": "volume-total", "data-since": t.since, "data-until": t.until }, fmt(total)), " predictions"),
    h("div", { class: "charts" },
      lineChart({ title: "Labelled accuracy per arm", series: lines("accuracy"), since: t.since, until: t.until, yMin: 0, yMax: 1, format: (v) => v.toFixed(2) }),
      barChart({ title: "Predictions per arm", series: lines("predictions"), since: t.since, until: t.until, bucketMs }),
      lineChart({ title: "Latency p95 (ms)", series: lines("latency_p95_ms"), since: t.since, until: t.until, format: (v) => v.toFixed(1) }),
      lineChart({ title: "Drift score (share of drifted features)", series: [{ name: "drift score", points: drift, color: "#d62728" }],
        since: t.drift.length ? t.drift[0].checked_at : t.since, until: t.until, yMin: 0, yMax: 1, threshold, format: (v) => v.toFixed(2) }),
      t.top_features.length
        ? barList({ title: `Most drifted features (check of ${when(t.drift_checked_at)}), PSI`,
          items: t.top_features.map((f) => ({ label: f.name, value: f.psi, highlight: f.drifted })) })
        : h("figure", { class: "chart" }, h("figcaption", {}, "Most drifted features"), empty("No drift check yet."))));
}

export function abtest(page, airflowRoot) {
  const t = page.abtest;
  if (!t) return section("abtest", "A/B test", empty("No A/B test yet."));
  const arms = t.arms.map((a) =>
    h("tr", { "data-arm": a.arm }, h("td", {}, a.arm), h("td", {}, a.version ? `v${a.version}` : "–"),
      h("td", {}, fmt(a.predictions)), h("td", {}, fmt(a.labelled)), h("td", {}, pct(a.accuracy)),
      h("td", {}, a.accuracy_low === null ? "–" : `${pct(a.accuracy_low)} – ${pct(a.accuracy_high)}`),
      h("td", {}, fmt(a.f1_macro)), h("td", {}, fmt(a.latency_p95_ms, 1))));
  const c = t.comparison;
  return section("abtest", t.live ? "A/B test (live)" : "A/B test (last one)",
    h("p", {}, badge(t.status), ` v${t.champion_version ?? "?"} vs v${t.challenger_version} · `,
      h("strong", { "data-testid": "ab-split" }, `${100 - t.traffic_percent} / ${t.traffic_percent}`),
      ` split (${t.policy}, stage ${t.stage_index + 1} of ${t.stages.length}) · started ${when(t.started_at)}`),
    t.awaiting_approval
      ? h("p", { class: "approval" }, "Promotion waits for a human: ",
        link(`${airflowRoot}required_actions`, "answer it in Required Actions", true))
      : null,
    arms.length ? table(["arm", "version", "predictions", "labelled", "accuracy", "95 % CI", "F1", "p95 ms"], arms) : null,
    c ? h("p", { class: "muted" }, `challenger − champion: ${fmt(c.difference)} (interval ${fmt(c.low)} … ${fmt(c.high)}, p ${fmt(c.pvalue)})`) : null,
    h("h3", {}, "Decisions"),
    h("ol", { class: "timeline" }, t.decisions.map((d) =>
      h("li", {}, h("time", {}, when(d.decided_at)), " ", badge(d.action, "action"),
        ` ${d.traffic_before} → ${d.traffic_after} % · ${d.reason} (${d.decided_by})`))));
}

export function requests(page, session, onRetrain) {
  const form = h("form", { class: "retrain", "data-testid": "retrain-form" },
    h("input", { name: "reason", placeholder: "reason (optional)", maxlength: 2000, size: 40 }),
    h("select", { name: "priority" }, ["normal", "high", "low"].map((p) => h("option", { value: p }, p))),
    h("button", { type: "submit", disabled: !session.can_request_retraining,
      title: session.can_request_retraining ? "" : "your role may not trigger DAGs" }, "Retrain now"),
    h("span", { class: "muted", "data-testid": "retrain-feedback" }));
  form.addEventListener("submit", (event) => { event.preventDefault(); onRetrain(form); });
  const rows = page.requests.map((r) =>
    h("tr", { "data-request-id": r.id }, h("td", {}, when(r.created_at)),
      h("td", { "data-testid": "request-status" }, badge(r.status)), h("td", {}, r.priority),
      h("td", {}, r.reason || ""), h("td", {}, fmt(r.attempts)),
      h("td", { class: "mono" }, r.retraining_run_id ? r.retraining_run_id.slice(0, 8) : "–"),
      h("td", {}, r.error_message || "")));
  return section("requests", "Retraining requests", form,
    rows.length ? table(["filed", "status", "priority", "reason", "attempts", "run", "error"], rows)
      : empty("No request yet."));
}
