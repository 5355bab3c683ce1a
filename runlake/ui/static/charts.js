"use strict";
// Charts logged with `wandb.plot.*` / `runlake.plot.*` (#29), drawn as what they are: each is a
// Table stored as Parquet whose reference names W&B's chart ("wandb/line/v0", ...) and which
// columns it draws (`fields`). Lines, scatters, line series and PR/ROC curves are uPlot charts;
// bars, histograms and class proportions are bars (SVG, a title per bar with its exact value);
// a confusion matrix is a grid of counts. The data stays one click away ("data").

const CHART_ROWS = 10000;  // rows a chart draws (the table's first ones; the rest are said)

function specKind(type) { return String(type || "").replace(/^wandb\//, "").replace(/\/v\d+$/, ""); }
function byGroup(rows, key, x, y) {  // rows -> [{label, x, y}] sorted by x, one per value of `key`
  const groups = new Map();
  for (const r of rows) {
    const label = key === null ? "" : String(r[key]);
    if (!groups.has(label)) groups.set(label, []);
    if (typeof r[x] === "number" && typeof r[y] === "number") groups.get(label).push([r[x], r[y]]);
  }
  return [...groups].map(([label, pts]) => { pts.sort((a, b) => a[0] - b[0]); return { label, x: pts.map((p) => p[0]), y: pts.map((p) => p[1]) }; });
}
function xyChart(box, groups, { scatter, xLabel, yLabel }) {
  const { xs, ys } = mergeXs(groups);
  box.dataset.series = String(groups.length);
  box.dataset.points = String(groups.reduce((n, g) => n + g.x.length, 0));
  makeChart(box, { xs, xLabel, yLabel, markers: [], series: groups.map((g, i) => ({ label: g.label || yLabel, color: PALETTE[i % PALETTE.length], ys: ys[i], points: scatter })) });
}
function barChart(box, bars, { xLabel, yLabel, groups }) {  // bars: [{label, values: [per group]}]
  const names = groups || [""], W = Math.max(300, box.clientWidth - 16 || 420), H = 220, L = 56, B = 46, T = 8;
  const max = Math.max(0, ...bars.flatMap((b) => b.values.filter((v) => typeof v === "number")));
  const min = Math.min(0, ...bars.flatMap((b) => b.values.filter((v) => typeof v === "number")));
  const yOf = (v) => T + (H - T - B) * (1 - (v - min) / ((max - min) || 1));
  const slot = (W - L - 8) / Math.max(1, bars.length), bw = (slot * 0.8) / names.length;
  const svg = svgEl("svg", { width: W, height: H, class: "bars" });
  const at = niceTicks(min, max, 4), ticks = tickText(at);
  at.forEach((v, i) => svg.append(svgEl("line", { x1: L, x2: W - 8, y1: yOf(v), y2: yOf(v), stroke: "#eef0f3" }),
    Object.assign(svgEl("text", { x: L - 4, y: yOf(v) + 4, "text-anchor": "end", fill: "#6b7482" }), { textContent: ticks[i] })));
  const longest = Math.max(1, ...bars.map((b) => Math.min(12, b.label.length)));
  const every = Math.max(1, Math.ceil((longest * 6.5 + 6) / slot));  // labels that fit side by side
  bars.forEach((b, i) => {
    b.values.forEach((v, k) => {
      if (typeof v !== "number") return;
      const x = L + i * slot + slot * 0.1 + k * bw, y0 = yOf(Math.max(0, v)), y1 = yOf(Math.min(0, v));
      svg.appendChild(svgEl("rect", { x, y: y0, width: Math.max(1, bw - 1), height: Math.max(1, y1 - y0), fill: PALETTE[k % PALETTE.length], class: "bar" },
        svgTitle(`${b.label}${names[k] ? " · " + names[k] : ""}: ${fmt(v)}`)));
    });
    if (i % every === 0) {
      const t = svgEl("text", { x: L + i * slot + slot / 2, y: H - B + 14, "text-anchor": "middle", fill: "#1d2430" });
      t.textContent = b.label.length > 12 ? b.label.slice(0, 11) + "…" : b.label;
      svg.appendChild(t);
    }
  });
  if (xLabel) svg.appendChild(Object.assign(svgEl("text", { x: L + (W - L) / 2, y: H - 8, "text-anchor": "middle", fill: "#6b7482" }), { textContent: xLabel }));
  if (yLabel) svg.appendChild(Object.assign(svgEl("text", { x: 12, y: T + (H - B) / 2, transform: `rotate(-90 12 ${T + (H - B) / 2})`, "text-anchor": "middle", fill: "#6b7482" }), { textContent: yLabel }));
  box.dataset.bars = String(bars.length * names.length);
  box.appendChild(svg);
  if (names.length > 1) box.appendChild(el("div", { class: "legend" }, names.map((n, k) => el("span", {}, el("span", { class: "swatch", style: `background:${PALETTE[k % PALETTE.length]}` }), " ", n))));
}
function niceTicks(lo, hi, n) {  // round values (1, 2 or 5 x 10^k apart) from lo to hi
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : +v.toPrecision(12));
  return out;
}
function histogramBars(values, bins) {  // W&B's histogram chart: the column binned
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (!finite.length) return [];
  const lo = Math.min(...finite), hi = Math.max(...finite), width = (hi - lo) / bins || 1;
  const counts = new Array(bins).fill(0);
  for (const v of finite) counts[Math.min(bins - 1, Math.floor((v - lo) / width))] += 1;
  return counts.map((c, i) => ({ label: fmt(lo + i * width), values: [c] }));
}
function confusionGrid(box, rows, f) {  // actual (rows) x predicted (columns), darker = more
  const actual = [...new Set(rows.map((r) => String(r[f.Actual])))], predicted = [...new Set(rows.map((r) => String(r[f.Predicted])))];
  const count = new Map(rows.map((r) => [String(r[f.Actual]) + "\u0000" + String(r[f.Predicted]), r[f.nPredictions]]));
  const max = Math.max(1, ...rows.map((r) => r[f.nPredictions] || 0));
  box.dataset.cells = String(actual.length * predicted.length);
  box.appendChild(el("table", { class: "confusion" },
    el("tr", {}, el("th", { text: "actual \\ predicted" }), predicted.map((p) => el("th", { text: p }))),
    actual.map((a) => el("tr", {}, el("th", { text: a }), predicted.map((p) => {
      const n = count.get(a + "\u0000" + p) || 0;
      return el("td", { class: "num", style: `background: rgba(0, 114, 178, ${(0.85 * n) / max}); color: ${n / max > 0.55 ? "#fff" : "inherit"}`, title: `actual ${a}, predicted ${p}: ${n}`, text: String(n) });
    })))));
}
function specChart(ref) {  // a logged chart: its table drawn as the chart its spec names
  const spec = ref.chart, f = spec.fields || {}, s = spec.string_fields || {}, kind = specKind(spec.type);
  const box = el("div", { class: "spec-chart", "data-spec": spec.type, "data-kind": kind });
  const head = el("div", { class: "muted", text: `${spec.title ? spec.title + " · " : ""}${spec.type} · ${ref.nrows} rows` });
  const body = el("div", { class: "spec-body" });
  const data = el("details", { class: "spec-data" }, el("summary", { text: "data" }));
  data.addEventListener("toggle", () => { if (data.open && data.children.length === 1) data.appendChild(tableView(ref)); }, { once: false });
  box.append(head, body, data);
  get("api/table?" + new URLSearchParams({ path: ref.path, limit: CHART_ROWS })).then((t) => {
    const rows = t.rows.map((r) => Object.fromEntries(t.columns.map((c, i) => [c, r[i]])));
    const axis = (name, fallback) => s[name] || fallback;
    switch (kind) {
      case "line": case "scatter":
        xyChart(body, byGroup(rows, f.stroke || null, f.x, f.y), { scatter: kind === "scatter", xLabel: axis("x-axis-title", f.x), yLabel: axis("y-axis-title", f.y) }); break;
      case "lineseries":
        xyChart(body, byGroup(rows, f.lineKey, f.step, f.lineVal), { xLabel: s.xname || f.step, yLabel: "" }); break;
      case "area-under-curve":
        xyChart(body, byGroup(rows, f.class || null, f.x, f.y), { xLabel: axis("x-axis-title", f.x), yLabel: axis("y-axis-title", f.y) }); break;
      case "bar":
        barChart(body, rows.map((r) => ({ label: String(r[f.label]), values: [r[f.value]] })), { xLabel: f.label, yLabel: f.value }); break;
      case "histogram":
        barChart(body, histogramBars(rows.map((r) => r[f.value]), 20), { xLabel: f.value, yLabel: "count" }); break;
      case "class_proportions": {
        const groups = [...new Set(rows.map((r) => String(r[f.color])))], labels = [...new Set(rows.map((r) => String(r[f.x])))];
        const at = new Map(rows.map((r) => [String(r[f.x]) + "\u0000" + String(r[f.color]), r[f.y]]));
        barChart(body, labels.map((l) => ({ label: l, values: groups.map((g) => at.get(l + "\u0000" + g) ?? null) })), { xLabel: f.x, yLabel: f.y, groups });
        break;
      }
      case "confusion_matrix": confusionGrid(body, rows, f); break;
      default:
        body.appendChild(el("div", { class: "muted", text: `no drawing for chart ${spec.type}: its data below` }));
        data.open = true;
    }
    body.dataset.drawn = kind;
    if (t.nrows > t.rows.length) head.textContent += ` (the first ${t.rows.length} drawn)`;
  }).catch((e) => body.appendChild(el("div", { class: "error", text: e.message })));
  return box;
}
const TABLE_PAGE = 20;
function tableView(ref) {  // a logged table from its Parquet file, paged; media cells shown
  const box = el("div", { class: "media-table" });
  const show = (offset) => get("api/table?" + new URLSearchParams({ path: ref.path, limit: TABLE_PAGE, offset })).then((t) => {
    const last = Math.min(t.nrows, offset + t.rows.length);
    box.replaceChildren(
      el("div", { class: "pager" },
        el("button", { class: "table-prev", disabled: offset <= 0, onclick: () => show(Math.max(0, offset - TABLE_PAGE)) }, "‹"),
        el("span", { class: "muted table-range", text: `rows ${t.nrows ? offset + 1 : 0}–${last} of ${t.nrows} × ${t.columns.length} columns` }),
        el("button", { class: "table-next", disabled: last >= t.nrows, onclick: () => show(offset + TABLE_PAGE) }, "›")),
      el("table", {},
        el("tr", {}, t.columns.map((c) => el("th", { text: c }))),
        t.rows.map((row) => el("tr", {}, row.map((v) => el("td", {}, v && typeof v === "object" && v._type ? mediaView(v) : fmt(v)))))));
  }).catch((e) => box.appendChild(el("div", { class: "error", text: e.message })));
  show(0);
  return box;
}
