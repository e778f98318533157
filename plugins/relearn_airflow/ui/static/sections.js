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

// Scores in [0, 1] with two decimals, whole ones too (1.00).
const score = (v) => (v === null || v === undefined ? "–" : v.toFixed(2));

// The health score's three parts, each with the figures it was computed from (unknown ones left out).
const figures = (...entries) => entries.filter(([, raw]) => raw !== null && raw !== undefined)
  .map(([name, raw, text]) => `${name} ${text}`).join(" · ");

function healthParts(c) {
  return [
    ["availability", c.availability, figures(["predictions", c.predictions, fmt(c.predictions)],
      ["usual", c.usual_predictions, fmt(c.usual_predictions, 1)])],
    ["error score", c.error_score, figures(["labelled", c.labelled, fmt(c.labelled)],
      ["accuracy", c.accuracy, pct(c.accuracy)], ["reference", c.reference_accuracy, pct(c.reference_accuracy)])],
    ["latency score", c.latency_score, figures(["p95", c.latency_p95_ms, `${fmt(c.latency_p95_ms, 1)} ms`],
      ["budget", c.latency_budget_ms, `${fmt(c.latency_budget_ms, 1)} ms`])],
  ].map(([name, value, text]) =>
    h("div", { class: "card", "data-part": name },
      h("div", { class: "card-title" }, name),
      h("div", { class: "big", "data-testid": `health-part-${name.replace(" ", "-")}` }, score(value)),
      h("div", { class: "muted" }, text)));
}

export function health(page) {
  const { latest, history } = page.health;
  if (!latest) return section("health", "Health", empty("model_health has not checked this model yet."));
  const scores = history.map((c) => ({ x: c.checked_at, y: c.score }));
  return section("health", "Health",
    h("div", { class: "cards" },
      h("div", { class: "card" }, h("div", { class: "card-title" }, "health score"),
        h("div", { class: "big", "data-testid": "health-score" }, score(latest.score)),
        h("div", {}, h("span", { "data-testid": "health-status" }, badge(latest.status))),
        h("div", { class: "muted" }, `checked ${when(latest.checked_at)}`,
          latest.champion_version ? ` · champion v${latest.champion_version}` : "")),
      healthParts(latest)),
    latest.issues.length
      ? h("ul", { class: "reasons", "data-testid": "health-issues" }, latest.issues.map((i) =>
        h("li", { "data-part": i.part }, h("strong", {}, i.issue), h("div", { class: "muted" }, i.recommendation))))
      : null,
    h("h3", {}, "History"),
    history.length
      ? h("div", { class: "charts" }, lineChart({ title: "Health score (healthy from 0.8)",
        series: [{ name: "score", points: scores, color: "#2ca02c" }], since: history[0].checked_at,
        until: page.generated_at, yMin: 0, yMax: 1, threshold: 0.8, format: (v) => v.toFixed(2) }))
      : empty("No check in the last three days."));
}

export function alerts(page) {
  if (!page.alerts.length) return section("alerts", "Alerts", empty("No alert in the last 30 days."));
  return section("alerts", "Alerts",
    table(["raised", "kind", "severity", "message", "delivered"], page.alerts.map((a) =>
      h("tr", { "data-alert-id": a.id }, h("td", {}, when(a.raised_at)), h("td", {}, a.kind),
        h("td", {}, badge(a.severity)),
        h("td", {}, a.message, a.recommendation ? h("div", { class: "muted" }, a.recommendation) : null),
        h("td", { "data-testid": "alert-delivered" }, a.delivered_at ? when(a.delivered_at)
          : h("span", { class: "error", title: a.last_error || "" }, `not yet (${a.attempts} attempts)`))))));
}

export function analysis(page) {
  const a = page.analysis;
  if (!a) return section("analysis", "Error analysis", empty("No daily error analysis yet."));
  const compared = a.compared_role ? `${a.compared_role} v${a.compared_version ?? "?"}` : null;
  return section("analysis", "Error analysis",
    h("p", {}, badge(a.status), ` champion v${a.champion_version ?? "?"} · `,
      h("strong", { "data-testid": "analysis-error-rate" }, pct(a.error_rate)),
      ` errors on ${fmt(a.rows)} labelled rows · ECE `, h("strong", { "data-testid": "analysis-ece" }, fmt(a.ece)),
      ` · ${when(a.window_start)} → ${when(a.window_end)}`,
      a.excluded_rows ? ` · ${fmt(a.excluded_rows)} unsound rows left out` : ""),
    a.suggestions.length
      ? h("ol", { class: "suggestions", "data-testid": "analysis-suggestions" }, a.suggestions.map((t) => h("li", {}, t)))
      : null,
    h("h3", {}, `Segments erring more than overall (${fmt(a.segments.length)} of ${fmt(a.tested_segments)} tested)`),
    a.segments.length
      ? table(["segment", "rows", "error rate", "overall", "95 % CI", "lift", compared ? compared : "compared"],
        a.segments.map((g) => h("tr", {}, h("td", {}, g.description), h("td", {}, fmt(g.rows)),
          h("td", {}, pct(g.error_rate)), h("td", {}, pct(a.error_rate)),
          h("td", {}, `${pct(g.ci_low)} – ${pct(g.ci_high)}`), h("td", {}, `×${fmt(g.lift, 2)}`),
          h("td", {}, pct(g.compared_error_rate)))), { "data-testid": "analysis-segments" })
      : empty("No segment errs significantly more than overall."),
    h("h3", {}, "Most confused classes"),
    a.confusion.length
      ? table(["actual", "predicted as", "count", "share of errors", "share of the class"], a.confusion.map((c) =>
        h("tr", {}, h("td", {}, c.actual), h("td", {}, c.predicted), h("td", {}, fmt(c.count)),
          h("td", {}, pct(c.share_of_errors)), h("td", {}, pct(c.share_of_class)))))
      : empty("No misclassification in the window."));
}

export function runs(page, airflowRoot) {
  if (!page.runs.length) return section("runs", "Retraining runs", empty("No retraining run yet."));
  // The DAG run's page as the run recorded it; older rows: the path computed from its ids.
  const logs = (r) => r.airflow_url || (r.airflow_run_path ? airflowRoot + r.airflow_run_path : null);
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
        r.analysis ? h("div", { class: "muted", "data-testid": "run-analysis" },
          `champion's holdout errors ${pct(r.analysis.error_rate)} on ${fmt(r.analysis.rows)} rows, `
          + `${fmt(r.analysis.significant_segments)} segment(s) above`,
          r.analysis.first_suggestion ? `: ${r.analysis.first_suggestion}` : "") : null,
        r.error_message ? h("div", { class: "error" }, r.error_message) : null),
      h("td", {}, r.model_version ? `v${r.model_version}` : "–"),
      h("td", {}, link(r.mlflow_run_url, "MLflow"), " ",
        logs(r) ? link(logs(r), "task logs", true) : null)));
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
