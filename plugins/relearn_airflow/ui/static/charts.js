// Inline SVG charts: time series (lines or bars) and a horizontal bar list. No dependencies.
import { h, s, fmt } from "./dom.js";

const W = 560;
const H = 180;
const PAD = { left: 48, right: 12, top: 14, bottom: 26 };
export const COLORS = { champion: "#1f77b4", challenger: "#ff7f0e", other: "#7f7f7f" };

const colour = (name, i) => COLORS[name] || ["#2ca02c", "#9467bd", "#8c564b"][i % 3];

function scales(series, since, until, yMin, yMax) {
  const values = series.flatMap((one) => one.points.map((p) => p.y)).filter((y) => y !== null);
  const low = yMin ?? Math.min(0, ...values);
  const high = yMax ?? Math.max(1e-9, ...values) * 1.1;
  const t0 = new Date(since).getTime();
  const t1 = new Date(until).getTime();
  const x = (t) => PAD.left + ((new Date(t).getTime() - t0) / Math.max(1, t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - ((v - low) / Math.max(1e-9, high - low)) * (H - PAD.top - PAD.bottom);
  return { x, y, low, high };
}

function axes({ x, y, low, high }, since, until, format) {
  const ticks = [low, (low + high) / 2, high];
  const label = (t) => new Date(t).toISOString().slice(5, 13).replace("T", " ") + "h";
  return [
    ...ticks.map((v) => [
      s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }),
      s("text", { x: PAD.left - 4, y: y(v) + 4, "text-anchor": "end", class: "tick" }, format(v)),
    ]),
    s("text", { x: x(since), y: H - 6, class: "tick" }, label(since)),
    s("text", { x: x(until), y: H - 6, "text-anchor": "end", class: "tick" }, label(until)),
  ];
}

function legend(series) {
  return h(
    "div",
    { class: "legend" },
    series.map((one, i) =>
      h("span", {}, h("i", { style: `background:${one.color || colour(one.name, i)}` }), one.name),
    ),
  );
}

/** Lines over time; a null value breaks the line. `threshold` draws a dashed level. */
export function lineChart({ title, series, since, until, yMin, yMax, format = fmt, threshold }) {
  const sc = scales(series, since, until, yMin, yMax);
  const paths = series.map((one, i) => {
    let d = "";
    let pen = "M";
    for (const p of one.points) {
      if (p.y === null) { pen = "M"; continue; }
      d += `${pen}${sc.x(p.x).toFixed(1)},${sc.y(p.y).toFixed(1)} `;
      pen = "L";
    }
    const color = one.color || colour(one.name, i);
    const dots = one.points
      .filter((p) => p.y !== null)
      .map((p) => s("circle", { cx: sc.x(p.x), cy: sc.y(p.y), r: 2.2, fill: color },
        s("title", {}, `${one.name} ${new Date(p.x).toISOString().slice(0, 16)}: ${format(p.y)}`)));
    return [s("path", { d, stroke: color, fill: "none", "stroke-width": 1.8 }), ...dots];
  });
  const level = threshold === undefined || threshold === null ? [] : [
    s("line", { x1: PAD.left, x2: W - PAD.right, y1: sc.y(threshold), y2: sc.y(threshold), class: "threshold" }),
  ];
  return h("figure", { class: "chart" }, h("figcaption", {}, title),
    s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title },
      axes(sc, since, until, format), level, paths),
    legend(series));
}

/** Bars over time, one bar per bucket stacked by series (e.g. predictions per arm). */
const count = (v) => Math.round(v).toLocaleString("en");

export function barChart({ title, series, since, until, bucketMs, format = count }) {
  const totals = new Map();
  for (const one of series) for (const p of one.points) totals.set(p.x, (totals.get(p.x) || 0) + p.y);
  const sc = scales([{ points: [...totals].map(([x, y]) => ({ x, y })) }], since, until, 0);
  const width = Math.max(1, sc.x(new Date(since).getTime() + bucketMs) - sc.x(since) - 1);
  const base = new Map();
  const bars = series.map((one, i) => one.points.map((p) => {
    const below = base.get(p.x) || 0;
    base.set(p.x, below + p.y);
    return s("rect", {
      x: sc.x(p.x), width, y: sc.y(below + p.y), height: sc.y(below) - sc.y(below + p.y),
      fill: one.color || colour(one.name, i),
    }, s("title", {}, `${one.name} ${new Date(p.x).toISOString().slice(0, 16)}: ${format(p.y)}`));
  }));
  return h("figure", { class: "chart" }, h("figcaption", {}, title),
    s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title }, axes(sc, since, until, format), bars),
    legend(series));
}

/** Horizontal bars: [{label, value, highlight}], longest first as given. */
export function barList({ title, items, format = fmt }) {
  const max = Math.max(1e-9, ...items.map((i) => i.value || 0));
  return h("figure", { class: "chart" }, h("figcaption", {}, title),
    h("div", { class: "barlist" }, items.map((item) =>
      h("div", { class: "barrow" },
        h("span", { class: "barlabel" }, item.label),
        h("span", { class: "bartrack" }, h("span", {
          class: item.highlight ? "bar hot" : "bar", style: `width:${(100 * (item.value || 0)) / max}%`,
        })),
        h("span", { class: "barvalue" }, format(item.value)))))
  );
}
