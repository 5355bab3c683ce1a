// runlake ui: plain JavaScript over the JSON API; every value from the server is put in the
// page with textContent (never parsed as HTML), so hostile run ids, keys and names stay text.
"use strict";

const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
const DASHES = [null, [6, 3], [2, 3], [8, 3, 2, 3]];
const app = document.getElementById("app");
const state = { charts: [], observers: [], poll: null, since: 0, view: null, seq: 0 };
const CHART_PAGE = 60;  // charts a run page shows at a time

// ---- small helpers --------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const SVG_NS = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  for (const child of children) if (child) node.appendChild(child);
  return node;
}
function svgTitle(text) { const t = svgEl("title"); t.textContent = text; return t; }
// the per-start secret this server put in its page: a POST without it is refused (another
// origin cannot read the page, so it cannot send it)
const SECRET = document.querySelector('meta[name="runlake-secret"]').content;
function post(path, body) {
  return fetch(path, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "X-Runlake-Secret": SECRET }, body: JSON.stringify(body) });
}
async function get(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}
function params(hash) {
  const [route, query] = hash.replace(/^#\/?/, "").split("?");
  return { route: route || "", q: new URLSearchParams(query || "") };
}
function go(route, q) {
  const s = q ? new URLSearchParams(Object.entries(q).filter(([, v]) => v !== "" && v !== null && v !== undefined)).toString() : "";
  location.hash = "#/" + route + (s ? "?" + s : "");
}
function runLink(id, label) {
  return el("a", { href: "#/run/" + encodeURIComponent(id), text: label || id });
}
function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(4) : String(+v.toFixed(6));
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}
function when(seconds) { return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) : ""; }
function stateBadge(s) { return el("span", { class: "state " + (s || ""), text: s || "" }); }
function destroyCharts() {
  for (const c of state.charts) c.destroy();
  for (const o of state.observers) if (o) o.disconnect();
  state.charts = []; state.observers = [];
}
function smooth(values, weight) {
  if (!weight) return values;
  let last = 0, norm = 0;
  return values.map((v) => { if (v === null) return null; last = last * weight + (1 - weight) * v; norm = norm * weight + (1 - weight); return last / norm; });
}

// ---- a chart: uPlot with fork/rewind markers, zoom that refetches at full resolution ---------
function markersPlugin(markers) {  // fork and rewind lines, each labelled ("fork @20 ← base")
  return { hooks: { draw: [(u) => {
    const ctx = u.ctx;
    ctx.save();
    ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
    markers.forEach((m, i) => {
      if (m.x === null || m.x === undefined) return;
      const px = u.valToPos(m.x, "x", true);
      if (px < u.bbox.left || px > u.bbox.left + u.bbox.width) return;
      ctx.strokeStyle = ctx.fillStyle = m.kind === "rewind" ? "#D55E00" : "#555";
      ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.moveTo(px, u.bbox.top); ctx.lineTo(px, u.bbox.top + u.bbox.height); ctx.stroke();
      if (!m.label) return;
      const text = m.label.length > 28 ? m.label.slice(0, 27) + "…" : m.label, w = ctx.measureText(text).width;
      const x = px + w + 6 > u.bbox.left + u.bbox.width ? px - w - 4 : px + 4;  // stays inside the plot
      ctx.fillText(text, x, u.bbox.top + (12 + 13 * (i % 4)) * devicePixelRatio);
    });
    ctx.restore();
  }] } };
}
// a tooltip with the exact values under the cursor: x, then each series' value there (the
// largest first, at most 12), so a chart of 20 runs reads without a legend row per run
function tooltipPlugin(xLabel) {
  let tip = null;
  return { hooks: {
    init: [(u) => { tip = el("div", { class: "chart-tip" }); tip.style.display = "none"; u.over.appendChild(tip); }],
    setCursor: [(u) => {
      const i = u.cursor.idx;
      if (i === null || i === undefined || u.cursor.left < 0) { tip.style.display = "none"; return; }
      const rows = u.series.slice(1).map((s, k) => [s, u.data[k + 1][i]]).filter(([s, v]) => s.show && v !== null && v !== undefined && !/ (low|high)$/.test(s.label));
      if (!rows.length) { tip.style.display = "none"; return; }
      rows.sort((a, b) => b[1] - a[1]);
      const x = u.data[0][i];
      tip.replaceChildren(el("div", { class: "muted", text: `${xLabel === "wall" ? when(x) : (xLabel || "x") + " " + fmt(x)}` }),
        ...rows.slice(0, 12).map(([s, v]) => el("div", {}, el("span", { class: "swatch", style: `background:${typeof s.stroke === "function" ? s.stroke(u, 1) : s.stroke}` }), ` ${s.label}: `, el("b", { text: fmt(v) }))),
        rows.length > 12 ? el("div", { class: "muted", text: `and ${rows.length - 12} more` }) : "");
      tip.style.display = "block";
      const left = u.cursor.left + 14, width = tip.offsetWidth;
      tip.style.left = (left + width > u.over.clientWidth ? u.cursor.left - width - 14 : left) + "px";
      tip.style.top = Math.max(0, u.cursor.top - 10) + "px";
    }],
  } };
}
// y ticks with as many digits as their spacing needs (uPlot's defaults printed a constant 3e-4
// as "0.001, 0, 0, 0"): fixed-point while that stays short, else exponent form
function tickText(splits) {
  const finite = splits.filter((v) => v !== null && Number.isFinite(v));
  if (!finite.length) return splits.map(() => "");
  const gaps = finite.slice(1).map((v, i) => Math.abs(v - finite[i])).filter((g) => g > 0);
  const step = gaps.length ? Math.min(...gaps) : Math.abs(finite[0]) || 1;
  const big = Math.max(...finite.map(Math.abs));
  let decimals = 0;  // the fewest digits that show the spacing exactly (0.25 needs 2)
  while (decimals < 12 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6 * step * 10 ** decimals) decimals += 1;
  if (big >= 1e6 || decimals > 4) {
    const digits = Math.min(6, Math.max(1, Math.ceil(Math.log10(Math.max(big, step) / step) - 1e-9)));
    return splits.map((v) => (v === null ? "" : v === 0 ? "0" : v.toExponential(digits)));
  }
  return splits.map((v) => (v === null ? "" : v.toFixed(decimals)));
}
function yRange(u, min, max) {  // a constant series gets a band around its value, not [0, 1]
  if (min === null || max === null) return [0, 1];
  if (min === max) { const pad = Math.abs(min) * 0.05 || 1; return [min - pad, max + pad]; }
  return uPlot.rangeNum(min, max, 0.1, true);
}
function makeChart(container, { xs, series, markers, logScale, xLabel, yLabel, onZoom, bands }) {
  const width = Math.max(300, container.clientWidth - 16);
  const opts = {
    width, height: 220,
    scales: { x: { time: xLabel === "wall" }, y: logScale ? { distr: 3 } : { distr: 1, range: yRange } },
    axes: [{ label: xLabel === "wall" ? "" : xLabel === "_runtime" ? "relative time (s)" : xLabel }, { label: yLabel || undefined, ...(logScale ? {} : { values: (u, splits) => tickText(splits), size: 60 }) }],
    series: [{}, ...series.map((s) => (s.points  // a scatter: points, no line
      ? { label: s.label, stroke: s.color, fill: s.color, width: 0, paths: () => null, points: { show: true, size: 5, fill: s.color } }
      : { label: s.label, stroke: s.color, width: s.width || 1.6, dash: s.dash || undefined, spanGaps: true, points: { show: false } }))],
    plugins: [markersPlugin(markers || []), tooltipPlugin(xLabel)],
    hooks: { setSelect: [(u) => { if (u.select.width > 4 && onZoom) { const lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x"); onZoom(lo, hi); } }] },
    cursor: { drag: { x: true, y: false, setScale: false } },
    // more series, or a group's band edges: the tooltip says them
    legend: { show: series.length > 1 && series.length <= 8 && !(bands && bands.length) },
    bands: bands || [],  // a group's band: filled between its high and low series (workspace.js)
  };
  const chart = new uPlot(opts, [xs, ...series.map((s) => s.ys)], container);
  state.charts.push(chart);
  return chart;
}
function mergeXs(parts) {
  // uPlot wants one shared x array: the union, each series null where it has no point
  const all = Array.from(new Set(parts.flatMap((p) => p.x))).sort((a, b) => a - b);
  const index = new Map(all.map((x, i) => [x, i]));
  const ys = parts.map((p) => { const y = new Array(all.length).fill(null); p.x.forEach((x, i) => { y[index.get(x)] = p.y[i]; }); return y; });
  return { xs: all, ys };
}

// ---- runs table ---------------------------------------------------------------------------
async function viewRuns(q) {
  const seq = state.seq;  // a newer navigation started since? then draw nothing
  const project = q.get("project") || "", page = +(q.get("page") || 0), limit = 50;
  const sort = q.get("sort") || "created_at", order = q.get("order") || "desc";
  const chosen = (q.get("summary") || "").split(",").filter(Boolean);
  const chosenConfig = (q.get("config") || "").split(",").filter(Boolean);
  const query = new URLSearchParams({ project, q: q.get("q") || "", state: q.get("state") || "", group: q.get("group") || "", tag: q.get("tag") || "", filters: q.get("filters") || "", sort, order, offset: page * limit, limit, summary: chosen.join(","), config: chosenConfig.join(",") });
  const [projects, data, sweeps] = await Promise.all([get("api/projects"), get("api/runs?" + query), get("api/sweeps?" + new URLSearchParams({ project }))]);
  const selected = new Set();
  const filters = el("div", { class: "toolbar" },
    el("select", { id: "project", onchange: (e) => go("", { ...Object.fromEntries(q), project: e.target.value, page: "" }) },
      el("option", { value: "", text: "all projects" }),
      projects.map((p) => el("option", { value: p.project, selected: p.project === project, text: `${p.project} (${p.runs})` }))),
    el("input", { id: "search", placeholder: "filter: id, name, group, tag", value: q.get("q") || "", onchange: (e) => go("", { ...Object.fromEntries(q), q: e.target.value, page: "" }) }),
    el("select", { id: "state", onchange: (e) => go("", { ...Object.fromEntries(q), state: e.target.value, page: "" }) },
      ["", "running", "finished", "failed", "crashed", "preempted"].map((s) => el("option", { value: s, selected: s === (q.get("state") || ""), text: s || "any state" }))),
    el("input", { id: "group", placeholder: "group", value: q.get("group") || "", size: 10, onchange: (e) => go("", { ...Object.fromEntries(q), group: e.target.value, page: "" }) }),
    el("input", { id: "tag", placeholder: "tag", value: q.get("tag") || "", size: 10, onchange: (e) => go("", { ...Object.fromEntries(q), tag: e.target.value, page: "" }) }),
    el("input", { id: "filters", placeholder: '{"config.lr": {"$gt": 0.01}}', title: "W&B's filter language (as runlake.Api().runs(filters=...))", value: q.get("filters") || "", size: 28, onchange: (e) => go("", { ...Object.fromEntries(q), filters: e.target.value, page: "" }) }),
    el("select", { id: "add-column", onchange: (e) => e.target.value && go("", { ...Object.fromEntries(q), summary: [...chosen, e.target.value].join(",") }) },
      el("option", { value: "", text: "+ summary column" }), data.summary_keys.filter((k) => !chosen.includes(k)).map((k) => el("option", { value: k, text: k }))),
    el("select", { id: "add-config-column", onchange: (e) => e.target.value && go("", { ...Object.fromEntries(q), config: [...chosenConfig, e.target.value].join(",") }) },
      el("option", { value: "", text: "+ config column" }), (data.config_keys || []).filter((k) => !chosenConfig.includes(k)).map((k) => el("option", { value: k, text: k }))),
    el("button", { id: "compare-selected", onclick: () => selected.size && go("compare", { runs: [...selected].join(",") }), text: "Compare selected" }),
    el("button", { id: "workspace-selected", onclick: () => selected.size && go("workspace", { runs: [...selected].join(",") }), text: "Workspace" }),
  );
  const all = !project;  // every project's runs: say which project each is in
  const columns = [["", null], ["id", "run_id"], ["name", "name"], ...(all ? [["project", null]] : []), ["state", "state"], ["group", "group"], ["tags", null], ["parent@step", null], ["last step", "last_step"], ["created", "created_at"], ...chosen.map((k) => [k, "summary." + k]), ...chosenConfig.map((k) => ["config." + k, "config." + k])];
  const head = el("tr", {}, columns.map(([label, key]) => el("th", {
    text: label + (key === sort ? (order === "desc" ? " ▼" : " ▲") : ""),
    onclick: key ? () => go("", { ...Object.fromEntries(q), sort: key, order: key === sort && order === "desc" ? "asc" : "desc" }) : null,
  })));
  const body = el("tbody", { id: "runs-body" }, data.rows.map((r) => el("tr", { "data-run": r.run_id, "data-state": r.state },
    el("td", {}, el("input", { type: "checkbox", onchange: (e) => e.target.checked ? selected.add(r.run_id) : selected.delete(r.run_id) })),
    el("td", {}, runLink(r.run_id)), el("td", { text: r.name }), all ? el("td", { class: "project-cell", text: r.project }) : "", el("td", { class: "state-cell" }, stateBadge(r.state)),
    el("td", { text: r.group || "" }), el("td", {}, (r.tags || []).map((t) => el("span", { class: "tag", text: t }))),
    el("td", {}, r.parent_run_id ? [runLink(r.parent_run_id), "@" + r.fork_step] : ""),
    el("td", { class: "num last-step", text: fmt(r.last_step) }), el("td", { text: when(r.created_at) }),
    chosen.map((k) => el("td", { class: "num", text: fmt((r.summary || {})[k]) })),
    chosenConfig.map((k) => el("td", { class: "config-cell", text: fmt((r.config || {})[k]) })))));
  const pages = Math.max(1, Math.ceil(data.total / limit));
  if (stale(seq)) return;
  const sweepTable = sweeps.length ? el("div", { id: "sweeps" }, el("h2", { text: "Sweeps" }), el("table", {},
    el("tr", {}, ["sweep", "project", "method", "metric", "trials", "running", "finished", "failed", "best run", "best value"].map((h) => el("th", { text: h }))),
    sweeps.map((s) => el("tr", { "data-sweep": s.sweep_id },
      el("td", {}, s.sweep_id, " ", el("a", { class: "sweep-workspace", href: "#/workspace?" + new URLSearchParams({ sweep: s.sweep_id }), text: "workspace" })), el("td", { text: s.project }), el("td", { text: s.method }), el("td", { text: s.metric_name ? `${s.metric_name} (${s.goal})` : "" }),
      el("td", { class: "num", text: s.trials }), el("td", { class: "num", text: s.running }), el("td", { class: "num", text: s.finished }), el("td", { class: "num", text: s.failed }),
      el("td", {}, s.best_run ? el("a", { href: "#/run/" + encodeURIComponent(s.best_run), text: s.best_run }) : ""), el("td", { class: "num", text: fmt(s.best_value) }))))) : "";
  app.replaceChildren(el("h1", { text: "Runs" }), filters, sweepTable,
    el("table", { id: "runs-table" }, el("thead", {}, head), body),
    el("div", { class: "pager" },
      el("button", { disabled: page <= 0, onclick: () => go("", { ...Object.fromEntries(q), page: page - 1 }), text: "‹ prev" }),
      el("span", { id: "page-info", text: `page ${page + 1} of ${pages} · ${data.total} runs` }),
      el("button", { disabled: page + 1 >= pages, onclick: () => go("", { ...Object.fromEntries(q), page: page + 1 }), text: "next ›" })));
  if (stale(seq)) return;
  state.onChanges = (changed) => {
    for (const c of changed) {
      const row = body.querySelector(`tr[data-run="${CSS.escape(c.run_id)}"]`);
      if (row) { row.dataset.state = c.state; row.querySelector(".state-cell").replaceChildren(stateBadge(c.state)); row.querySelector(".last-step").textContent = fmt(c.last_step); }
      else if (page === 0 && !q.get("q") && (!project || c.project === project)) { route(); return; }
    }
  };
}

// ---- one run ------------------------------------------------------------------------------
function kvTable(obj, id) {
  const entries = Object.entries(obj || {});
  // a media value is summarised by its kind (it is drawn under Media), never printed as JSON
  const show = (v) => (v && typeof v === "object" && typeof v._type === "string" ? summaryOf(v) : fmt(v));
  return el("div", { class: "kv", id }, entries.length ? entries.flatMap(([k, v]) => [el("div", { class: "muted", text: k }), el("div", {}, show(v))]) : el("div", { class: "muted", text: "—" }));
}
function summaryOf(v) {  // a summary value by kind: a histogram as a small picture, a table as its size
  switch (v._type) {
    case "histogram": return el("span", { class: "summary-histogram" }, histogramView(v, 120, 22));
    case "table-file": return v.chart ? `chart ${v.chart.type}${v.chart.title ? ": " + v.chart.title : ""}` : `table, ${v.nrows} rows × ${v.ncols} columns`;
    case "image-file": return `image ${v.width || "?"}×${v.height || "?"}${v.caption ? " · " + v.caption : ""}`;
    case "images/separated": case "media-list": return `${(v.items || []).length || v.count || ""} images`;
    default: return `‹${v._type.replace(/-file$/, "")}›`;
  }
}
// ---- logged media: each kind shown as what it is (files come from api/media) -----------------
function mediaSrc(ref) { return "api/media?" + new URLSearchParams({ path: ref.path }); }
function histogramView(ref, w = 240, h = 60) {  // W&B's histogram JSON as bars
  const values = ref.values || [], max = Math.max(1, ...values), bw = w / Math.max(1, values.length);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("class", "histogram");
  values.forEach((v, i) => {
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    r.setAttribute("x", i * bw); r.setAttribute("width", Math.max(1, bw - 1)); r.setAttribute("y", h - (v / max) * h); r.setAttribute("height", (v / max) * h); r.setAttribute("fill", "#0072B2");
    svg.appendChild(r);
  });
  const bins = ref.bins || [];
  return el("div", {}, svg, el("div", { class: "muted", text: bins.length ? `${fmt(bins[0])} … ${fmt(bins[bins.length - 1])}` : "" }));
}
function mediaView(ref) {
  if (!ref || typeof ref !== "object") return el("span", { text: fmt(ref) });
  const caption = ref.caption ? el("div", { class: "muted", text: ref.caption }) : "";
  switch (ref._type) {
    case "image-file": return el("figure", { class: "media" }, el("img", { src: mediaSrc(ref), alt: ref.caption || "image", loading: "lazy" }), caption);
    case "images/separated": case "media-list": return el("div", { class: "media-list" }, (ref.items || []).map(mediaView));
    case "audio-file": return el("figure", { class: "media" }, el("audio", { controls: true, src: mediaSrc(ref) }), caption);
    case "video-file": return el("figure", { class: "media" }, ref.format === "gif" ? el("img", { src: mediaSrc(ref), alt: "video" }) : el("video", { controls: true, src: mediaSrc(ref) }), caption);
    case "html-file": return el("iframe", { class: "media-html", sandbox: "", src: mediaSrc(ref), title: "logged HTML" });
    case "plotly-file": return el("a", { href: mediaSrc(ref), target: "_blank", rel: "noopener", text: "plotly figure (JSON)" });
    case "histogram": return histogramView(ref);
    case "text": case "list": return "";  // shown by step (overSteps)
    case "table-file": return ref.chart ? specChart(ref) : tableView(ref);
    default: return el("span", { text: fmt(ref) });
  }
}
function mediaSection(info) {
  if (!info.media.length) return "";
  return el("div", { id: "media" }, el("h2", { text: "Media" }), el("div", { class: "grid" },
    info.media.map((m) => el("div", { class: "chart", "data-key": m.key }, el("h3", { text: m.key }), overSteps(info.run.run_id, m), mediaView(m.value)))));
}
function overSteps(runId, m) {  // a histogram's heat map over steps; an image's step slider; text by step
  const kind = (m.value || {})._type;
  if (kind !== "histogram" && kind !== "image-file" && kind !== "text" && kind !== "list") return "";
  const box = el("div", { class: "over-steps" });
  get(`api/runs/${encodeURIComponent(runId)}/steps?` + new URLSearchParams({ key: m.key, limit: 200 })).then((data) => {
    if (data.heatmap) return box.appendChild(heatmap(data));
    if (kind === "text" || kind === "list") return box.appendChild(el("table", { class: "text-steps" }, el("tr", {}, el("th", { text: "step" }), el("th", { text: kind })),
      data.steps.map((st, i) => el("tr", {}, el("td", { class: "num", text: fmt(st) }), el("td", { text: typeof data.values[i] === "string" ? data.values[i] : fmt(data.values[i]) })))));
    if (data.steps.length < 2) return;
    const img = el("img", { class: "stepped", alt: m.key, src: mediaSrc(data.values[data.values.length - 1]) });
    const label = el("span", { class: "muted", text: `step ${data.steps[data.steps.length - 1]}` });
    const slider = el("input", { type: "range", class: "step-slider", min: 0, max: data.steps.length - 1, value: data.steps.length - 1, oninput: (e) => {
      const i = +e.target.value; img.src = mediaSrc(data.values[i]); label.textContent = `step ${data.steps[i]}` + (data.values[i].caption ? ` · ${data.values[i].caption}` : "");
    } });
    box.parentNode?.querySelector(":scope > figure.media")?.remove();  // the slider shows the latest too
    label.textContent += data.values[data.values.length - 1].caption ? ` · ${data.values[data.values.length - 1].caption}` : "";
    box.append(img, el("div", {}, slider, " ", label));
  }).catch((e) => box.appendChild(el("div", { class: "error", text: e.message })));
  return box;
}
function heatmap(data) {  // bins (rows, low at the bottom) x steps (columns), darker = more
  const counts = data.heatmap.counts, edges = data.heatmap.edges, cols = counts.length, rows = edges.length - 1;
  const canvas = el("canvas", { class: "heatmap", width: 360, height: 120, "data-steps": String(cols), "data-bins": String(rows) });
  const ctx = canvas.getContext("2d"), cw = 360 / cols, ch = 120 / rows;
  counts.forEach((col, i) => {
    const max = Math.max(1, ...col.map((v) => v || 0));
    col.forEach((v, j) => { ctx.fillStyle = colour((v || 0) / max); ctx.fillRect(i * cw, 120 - (j + 1) * ch, Math.ceil(cw), Math.ceil(ch)); });
  });
  return el("div", {}, canvas, el("div", { class: "muted", text: `steps ${data.steps[0]} … ${data.steps[data.steps.length - 1]} · values ${fmt(edges[0])} … ${fmt(edges[edges.length - 1])}` }));
}
function alertsSection(info) {
  if (!info.alerts.length) return "";
  return el("div", { id: "alerts" }, el("h2", { text: "Alerts" }), el("table", {},
    el("tr", {}, ["time", "step", "level", "title", "text"].map((h) => el("th", { text: h }))),
    info.alerts.map((a) => el("tr", { class: "alert " + (a.level || "").toLowerCase() },
      el("td", { text: a.alerted_at ? when(a.alerted_at) : "" }), el("td", { class: "num", text: fmt(a.step) }),
      el("td", { text: a.level }), el("td", { text: a.title }), el("td", { text: a.text })))));
}
function systemSection(runId) {  // system metrics, one chart per key, a series per process label
  const box = el("div", { id: "system" });
  get(`api/runs/${encodeURIComponent(runId)}/system`).then((data) => {
    const keys = Object.keys(data.keys);
    if (!keys.length) return;
    const grid = el("div", { class: "grid" });
    box.append(el("h2", { text: "System" }), grid);
    keys.forEach((key) => {
      const labels = Object.keys(data.keys[key]);
      const chart = el("div", { class: "chart system-chart", "data-key": key, "data-series": String(labels.length) });
      grid.appendChild(el("div", {}, el("h3", { text: key.replace(/^system\./, "") }), chart));
      const { xs, ys } = mergeXs(labels.map((l) => data.keys[key][l]));
      makeChart(chart, { xs, xLabel: "seconds", series: labels.map((l, i) => ({ label: l, color: PALETTE[i % PALETTE.length], ys: ys[i], width: 1.5 })), markers: [] });
    });
  }).catch((e) => box.appendChild(el("div", { class: "error", text: e.message })));
  return box;
}
function bytes(n) { return n === null || n === undefined ? "" : n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : n < 1073741824 ? `${(n / 1048576).toFixed(1)} MiB` : `${(n / 1073741824).toFixed(2)} GiB`; }
function artifactsSection(runId) {  // what the run logged and used, each version's files on demand
  const box = el("div", { id: "artifacts" });
  get(`api/runs/${encodeURIComponent(runId)}/artifacts`).then((data) => {
    if (!data.artifacts.length) return;
    box.append(el("h2", { text: "Artifacts" }), el("div", {}, data.artifacts.map((a) => {
      const files = el("details", { class: "artifact", "data-artifact": `${a.name}:v${a.version}`, "data-direction": a.direction },
        el("summary", {}, el("b", { text: a.direction === "output" ? "logged " : "used " }), `${a.name}:v${a.version}`, el("span", { class: "muted", text: ` ${a.type} · ${bytes(a.size)} · ${a.files} file${a.files === 1 ? "" : "s"}${a.step !== null ? " · step " + a.step : ""}` }),
          a.direction === "input" && a.logged_by ? el("span", {}, " · logged by ", runLink(a.logged_by)) : ""));
      files.addEventListener("toggle", () => {
        if (!files.open || files.querySelector("table")) return;
        get("api/artifact-files?" + new URLSearchParams({ project: a.project, name: a.name, version: a.version })).then((f) => files.appendChild(el("table", { class: "artifact-files" },
          el("tr", {}, ["file", "size", "sha256"].map((h) => el("th", { text: h }))),
          f.files.map((x) => el("tr", {}, el("td", { text: x.path }), el("td", { class: "num", text: bytes(x.size) }), el("td", { class: "muted", text: (x.sha256 || "").slice(0, 12) }))),
          f.total > f.files.length ? el("tr", {}, el("td", { class: "muted", text: `and ${f.total - f.files.length} more` })) : ""))).catch((e) => files.appendChild(el("div", { class: "error", text: e.message })));
      });
      return files;
    })));
  }).catch((e) => box.appendChild(el("div", { class: "error", text: e.message })));
  return box;
}
function consoleSection(runId) {  // the console tab: the last lines, searchable
  const box = el("div", { id: "console" });
  const out = el("pre", { class: "console" });
  const count = el("span", { class: "muted" });
  const load = (grep) => get(`api/runs/${encodeURIComponent(runId)}/console?` + new URLSearchParams({ grep: grep || "", limit: 2000 }))
    .then((data) => {
      if (!data.total && !grep && !box.childElementCount) return;
      if (!box.childElementCount) box.append(el("h2", { text: "Console" }), el("div", { class: "toolbar" }, "search:", search, count), out);
      count.textContent = ` ${data.total} line(s)` + (data.total > data.lines.length ? `, the last ${data.lines.length} shown` : "");
      out.replaceChildren(...data.lines.map((l) => el("div", { class: "console-line " + l.stream, "data-step": l.step },
        el("span", { class: "muted", text: (l.label ? `[${l.label}] ` : "") }), l.content)));
    }).catch((e) => { count.textContent = " " + e.message; });
  const search = el("input", { type: "search", id: "console-search", placeholder: "regular expression", onchange: (e) => load(e.target.value) });
  load("");
  return box;
}
function pick(runId, checked) {  // a lineage node's tick: pick runs to compare from the tree
  return el("input", { type: "checkbox", class: "pick", value: runId, checked, title: "compare this run" });
}
function lineageTree(info) {
  const run = info.run;
  const chain = info.lineage.slice().reverse();  // root first
  const root = el("ul", {});
  let cursor = root;
  chain.forEach((node, i) => {
    const current = i === chain.length - 1;
    const label = node.kind === "root" ? "" : `${node.kind} @${node.cutoff} → `;
    const li = el("li", { class: "lineage-node" + (current ? " current" : ""), "data-run": node.run_id, "data-segment": node.segment, "data-kind": node.kind },
      pick(node.run_id, current), label, runLink(node.run_id), node.segment ? el("span", { class: "muted", text: ` (segment ${node.segment})` }) : "");
    cursor.appendChild(li);
    const next = el("ul", {});
    li.appendChild(next);
    cursor = next;
  });
  for (const d of info.descendants) {
    cursor.appendChild(el("li", { class: "lineage-node descendant", "data-run": d.run_id, "data-kind": "fork" }, pick(d.run_id, false), `fork @${d.fork_step} → `, runLink(d.run_id), el("span", { class: "muted", text: ` gen ${d.generation} · ${d.state}` })));
  }
  const compareTicked = el("button", { id: "compare-picked", text: "Compare ticked", onclick: () => {
    const runs = [...new Set([...document.querySelectorAll("#lineage input.pick:checked")].map((i) => i.value))];
    if (runs.length) go("compare", { runs: runs.join(",") });
  } });
  const workspaceTicked = el("button", { id: "workspace-picked", text: "Workspace of ticked", onclick: () => {
    const runs = [...new Set([...document.querySelectorAll("#lineage input.pick:checked")].map((i) => i.value))];
    if (runs.length) go("workspace", { runs: runs.join(",") });
  } });
  const archived = info.segments.filter((s) => s.segment !== run.segment);
  return el("div", { class: "tree", id: "lineage" }, root, compareTicked, " ", workspaceTicked,
    archived.length ? el("div", { class: "muted", text: "archived segments: " + archived.map((s) => `${s.segment} (${s.kind}${s.cutoff !== null ? " @" + s.cutoff : ""})`).join(", ") }) : "");
}
async function drawSeries(box, runId, key, opts) {
  const query = new URLSearchParams({ key, x: opts.x, buckets: Math.min(2000, Math.max(200, box.clientWidth)) });
  if (opts.lo !== undefined) { query.set("lo", opts.lo); query.set("hi", opts.hi); }
  if (opts.segment !== undefined) query.set("segment", opts.segment);
  const data = await get(`api/runs/${encodeURIComponent(runId)}/series?` + query);
  const parts = [data.inherited, data.own];
  const archived = opts.archived || [];
  const { xs, ys } = mergeXs([...parts, ...archived.map((a) => a.data.own)]);
  const series = [
    { label: "inherited", color: "#9aa3ad", dash: [5, 3], ys: smooth(ys[0], opts.smoothing) },
    { label: "own", color: PALETTE[0], ys: smooth(ys[1], opts.smoothing), width: 2 },
    ...archived.map((a, i) => ({ label: `segment ${a.segment} (archived)`, color: PALETTE[(i + 3) % PALETTE.length], dash: [2, 2], ys: smooth(ys[2 + i], opts.smoothing) })),
  ];
  box.replaceChildren();
  box.dataset.points = String(data.shown);
  box.dataset.total = String(data.points);
  box.dataset.markers = String(data.markers.length);
  box.dataset.inherited = String(data.inherited.x.length);
  makeChart(box, { xs, series, markers: data.markers, logScale: opts.log, xLabel: data.x_label === "wall" ? "wall" : data.x_label,
    onZoom: (lo, hi) => drawSeries(box, runId, key, { ...opts, lo, hi }) });
  return data;
}
async function viewRun(runId, q) {
  const seq = state.seq;  // a newer navigation started since? then draw nothing
  const info = await get("api/runs/" + encodeURIComponent(runId));
  const run = info.run;
  const stepMetrics = [...new Set(info.metrics.filter((m) => m.step_metric).map((m) => m.step_metric))];
  const opts = { x: q.get("x") || "step", smoothing: +(q.get("smooth") || 0), log: q.get("log") === "1" };
  const archivedToggle = el("input", { type: "checkbox", id: "show-archived", checked: q.get("archived") === "1", onchange: (e) => go("run/" + encodeURIComponent(runId), { ...Object.fromEntries(q), archived: e.target.checked ? "1" : "" }) });
  const controls = el("div", { class: "toolbar" },
    "x:", el("select", { id: "x-axis", onchange: (e) => go("run/" + encodeURIComponent(runId), { ...Object.fromEntries(q), x: e.target.value }) },
      ["step", "wall", ...stepMetrics].map((x) => el("option", { value: x, selected: x === opts.x, text: x === "wall" ? "wall time" : x }))),
    "smoothing:", el("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: opts.smoothing, onchange: (e) => go("run/" + encodeURIComponent(runId), { ...Object.fromEntries(q), smooth: e.target.value }) }),
    el("label", {}, el("input", { type: "checkbox", id: "log-scale", checked: opts.log, onchange: (e) => go("run/" + encodeURIComponent(runId), { ...Object.fromEntries(q), log: e.target.checked ? "1" : "" }) }), " log scale"),
    el("label", {}, archivedToggle, " archived segments"),
    el("button", { id: "compare-descendants", onclick: () => go("compare", { runs: [runId, ...info.descendants.map((d) => d.run_id)].join(",") }), text: "Compare with its descendants" }),
    el("button", { id: "workspace-descendants", onclick: () => go("workspace", { runs: [runId, ...info.descendants.map((d) => d.run_id)].join(",") }), text: "Workspace: it and its descendants" }));
  const charts = el("div", { id: "charts" });
  if (stale(seq)) return;
  app.replaceChildren(
    el("h1", { id: "run-title" }, run.name || run.run_id, " ", stateBadge(run.state)),
    el("div", { class: "muted", id: "run-meta" }, `id ${run.run_id} · project ${run.project} · created ${when(run.created_at)} · last step ${fmt(run.last_step)}`,
      run.group ? ` · group ${run.group}` : "", run.job_type ? ` · ${run.job_type}` : "", " ", (run.tags || []).map((t) => el("span", { class: "tag", text: t }))),
    el("div", { class: "cols" },
      el("div", {}, el("h2", { text: "Lineage" }), lineageTree(info)),
      el("div", {}, el("h2", { text: "Config" }), kvTable(info.config, "config")),
      el("div", {}, el("h2", { text: "Summary" }), kvTable(info.summary, "summary"))),
    alertsSection(info), mediaSection(info),
    el("h2", { text: "Charts" }), controls, charts, systemSection(runId), artifactsSection(runId), consoleSection(runId));
  const archivedSegments = q.get("archived") === "1" ? info.segments.filter((s) => s.segment !== run.segment).map((s) => s.segment) : [];
  // A run may have thousands of keys: the page shows CHART_PAGE charts at a time (a filter
  // narrows them, "more" adds a page), and beyond one page a chart is fetched only when it
  // scrolls near the view, never all at once.
  const filter = (q.get("keys") || "").toLowerCase();
  const shown = +(q.get("charts") || CHART_PAGE);
  const total = Object.values(info.groups).reduce((n, keys) => n + keys.length, 0);
  const lazy = total > CHART_PAGE ? new IntersectionObserver((entries) => {
    for (const entry of entries) if (entry.isIntersecting) { lazy.unobserve(entry.target); entry.target.draw(); }
  }, { rootMargin: "600px" }) : null;
  state.observers.push(lazy);
  let count = 0, matching = 0;
  for (const [section, keys] of Object.entries(info.groups)) {
    const grid = el("div", { class: "grid" });
    for (const key of keys) {
      if (filter && !key.toLowerCase().includes(filter)) continue;
      matching += 1;
      if (count >= shown) continue;
      count += 1;
      const box = el("div", { class: "chart-body" });
      const chart = el("div", { class: "chart", "data-key": key }, el("h3", { text: key }), box);
      grid.appendChild(chart);
      chart.draw = async () => {
        const archived = [];
        for (const segment of archivedSegments) {
          archived.push({ segment, data: await get(`api/runs/${encodeURIComponent(runId)}/series?` + new URLSearchParams({ key, segment })) });
        }
        await drawSeries(box, runId, key, { ...opts, archived }).catch((e) => box.replaceChildren(el("div", { class: "error", text: e.message })));
      };
      if (lazy) lazy.observe(chart); else chart.draw();
    }
    if (grid.childElementCount) charts.append(el("h2", { text: section || "metrics" }), grid);
  }
  if (total > CHART_PAGE || filter) {
    charts.prepend(el("div", { class: "toolbar" },
      el("input", { id: "key-filter", placeholder: "filter keys", value: q.get("keys") || "", onchange: (e) => go("run/" + encodeURIComponent(runId), { ...Object.fromEntries(q), keys: e.target.value, charts: "" }) }),
      el("span", { class: "muted", id: "charts-info", text: `${count} of ${matching} charts` + (matching !== total ? ` (${total} keys)` : "") }),
      matching > count ? el("button", { id: "more-charts", onclick: () => go("run/" + encodeURIComponent(runId), { ...Object.fromEntries(q), charts: shown + CHART_PAGE }), text: `show ${Math.min(CHART_PAGE, matching - count)} more` }) : ""));
  }
  if (stale(seq)) return;
  state.onChanges = (changed) => {
    const mine = changed.find((c) => c.run_id === runId);
    if (mine && (mine.last_step !== run.last_step || mine.state !== run.state)) { run.last_step = mine.last_step; run.state = mine.state; route(true); }
  };
}

// ---- compare -------------------------------------------------------------------------------
async function viewCompare(q) {
  const seq = state.seq;  // a newer navigation started since? then draw nothing
  const runs = (q.get("runs") || "").split(",").filter(Boolean);
  if (!runs.length) { if (stale(seq)) return; app.replaceChildren(el("h1", { text: "Compare" }), el("p", { class: "muted", text: "Pick runs in the runs table (checkboxes), or from a run page." })); return; }
  const infos = await Promise.all(runs.map((r) => get("api/runs/" + encodeURIComponent(r))));
  const keys = [...new Set(infos.flatMap((i) => i.keys))].sort();
  const key = q.get("key") || keys[0];
  const smoothing = +(q.get("smooth") || 0), log = q.get("log") === "1";
  const x = q.get("x") || "";  // "": the key's step metric if a run defines one, else the step
  const stepMetrics = [...new Set(infos.flatMap((i) => i.metrics.filter((m) => m.step_metric).map((m) => m.step_metric)))];
  const box = el("div", { class: "chart-body", id: "compare-chart" });
  if (stale(seq)) return;
  app.replaceChildren(el("h1", { text: "Compare" }),
    el("div", { class: "toolbar" }, "runs:", runs.map((r) => runLink(r)), "key:",
      el("select", { id: "compare-key", onchange: (e) => go("compare", { ...Object.fromEntries(q), key: e.target.value }) }, keys.map((k) => el("option", { value: k, selected: k === key, text: k }))),
      "x:", el("select", { id: "compare-x", onchange: (e) => go("compare", { ...Object.fromEntries(q), x: e.target.value }) },
        [["", "auto"], ["step", "step"], ["wall", "wall time"], ...stepMetrics.map((m) => [m, m])].map(([v, t]) => el("option", { value: v, selected: v === x, text: t }))),
      "smoothing:", el("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: smoothing, onchange: (e) => go("compare", { ...Object.fromEntries(q), smooth: e.target.value }) }),
      el("label", {}, el("input", { type: "checkbox", checked: log, onchange: (e) => go("compare", { ...Object.fromEntries(q), log: e.target.checked ? "1" : "" }) }), " log scale")),
    el("div", { class: "chart", "data-key": key }, box));
  if (!key) return;
  const draw = async (lo, hi) => {  // a zoom asks the server again for its window
    const query = new URLSearchParams({ runs: runs.join(","), key, buckets: 1500, x });
    if (lo !== undefined) { query.set("lo", lo); query.set("hi", hi); }
    const data = await get("api/compare?" + query);
    const { xs, ys } = mergeXs(data.lines);
    box.replaceChildren();
    box.dataset.lines = String(data.lines.length);
    box.dataset.markers = String(data.markers.length);
    box.dataset.points = String(data.lines.reduce((n, l) => n + l.x.length, 0));
    box.dataset.xLabel = data.x_label;
    makeChart(box, { xs, xLabel: data.x_label, logScale: log, markers: data.markers, onZoom: draw,
      series: data.lines.map((l, i) => ({ label: l.label, color: PALETTE[i % PALETTE.length], dash: DASHES[Math.floor(i / PALETTE.length) % DASHES.length], ys: smooth(ys[i], smoothing) })) });
  };
  await draw();
}

// ---- population ------------------------------------------------------------------------------
function colour(t) {  // viridis-like, t in [0, 1]
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(0.9999, Math.max(0, t)) * (stops.length - 1), i = Math.floor(x), f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * f));
  return `rgb(${c.join(",")})`;
}
// ---- SQL ------------------------------------------------------------------------------------
function viewSql(q) {
  const area = el("textarea", { id: "sql-input", spellcheck: "false" });
  // never taken from the link: a query is only ever what the user typed (or this example)
  area.value = "SELECT run_id, count(*) AS points FROM history GROUP BY run_id ORDER BY points DESC LIMIT 20";
  const out = el("div", { class: "sqlresult", id: "sql-result" });
  async function run() {
    out.replaceChildren(el("p", { class: "muted", text: "running…" }));
    const response = await post("api/sql", { query: area.value });
    const body = await response.json();
    if (!response.ok) { out.replaceChildren(el("div", { class: "error", id: "sql-error", text: body.error })); return; }
    out.replaceChildren(el("div", { class: "muted", text: `${body.total} rows` + (body.total > body.rows.length ? ` (first ${body.rows.length} shown)` : "") + (body.truncated ? " — the result was cut at the server's limit" : "") }),
      el("table", {}, el("thead", {}, el("tr", {}, body.columns.map((c) => el("th", { text: c })))),
        el("tbody", {}, body.rows.map((r) => el("tr", {}, r.map((v) => el("td", { text: fmt(v) })))))));
  }
  async function download(format) {
    const response = await post("api/sql", { query: area.value, format });
    if (!response.ok) { out.replaceChildren(el("div", { class: "error", text: (await response.json()).error })); return; }
    const url = URL.createObjectURL(await response.blob());
    el("a", { href: url, download: "query." + format }).click();
  }
  app.replaceChildren(el("h1", { text: "SQL" }),
    el("p", { class: "muted", text: "Read-only SQL over runs, segments, lineage, history and raw_history (statements that write, attach, install or copy are refused)." }),
    area, el("div", { class: "toolbar" }, el("button", { class: "primary", id: "sql-run", onclick: run, text: "Run" }),
      el("button", { id: "sql-csv", onclick: () => download("csv"), text: "CSV" }), el("button", { id: "sql-parquet", onclick: () => download("parquet"), text: "Parquet" })), out);
}

// ---- routing and live updates ---------------------------------------------------------------
function stale(seq) {  // a newer navigation started: this view draws nothing (and says so)
  if (seq === state.seq) return false;
  document.body.dataset.dropped = String(seq);
  return true;
}
async function route(keepScroll) {
  const seq = ++state.seq;
  const { route: r, q } = params(location.hash);
  const scroll = window.scrollY;
  destroyCharts();
  state.onChanges = null;
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", (r.split("/")[0] || "runs") === a.dataset.nav));
  try {
    if (r.startsWith("run/")) await viewRun(decodeURIComponent(r.slice(4)), q);
    else if (r === "compare") await viewCompare(q);
    else if (r === "workspace") await viewWorkspace(q);
    else if (r === "population") await viewPopulation(q);
    else if (r === "sql") viewSql(q);
    else await viewRuns(q);
  } catch (e) {
    if (seq === state.seq) {
      app.replaceChildren(el("div", { class: "error", id: "page-error", text: e.message }));
      // a run not there yet (or not readable yet): look again when it changes
      if (r.startsWith("run/")) {
        const runId = decodeURIComponent(r.slice(4));
        state.onChanges = (changed) => { if (changed.some((c) => c.run_id === runId)) route(true); };
      }
    }
  }
  if (seq !== state.seq) return;  // a newer navigation draws (and says when it is ready)
  if (keepScroll) window.scrollTo(0, scroll);
  document.body.dataset.ready = String(Date.now());
}
async function poll() {
  try {
    const data = await get("api/changes?since=" + state.since);
    state.since = data.now;
    document.getElementById("live").classList.remove("off");
    if (data.runs.length && state.onChanges) state.onChanges(data.runs);
  } catch (e) {
    document.getElementById("live").classList.add("off");
  }
}
window.addEventListener("hashchange", () => route());
state.since = Date.now() / 1000;
route();
setInterval(poll, 2000);
