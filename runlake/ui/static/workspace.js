"use strict";
// The workspace (#29): the runs picked (table checkboxes, a run and its descendants, a lineage
// tree, a sweep) and every key they logged as a grid of panels. One colour per run, kept across
// panels; a legend toggles runs on and off; panels are filtered by a key regex and resized;
// x, smoothing and log scale as on a run page; a zoom in one panel zooms them all. Grouped
// (by group, job type, sweep or a config key), each panel draws one line per group with its
// band (±std or min–max), computed on the server (api/group), so 1,000 runs are a few bands.

async function viewWorkspace(q) {
  const seq = state.seq;  // a newer navigation started since? then draw nothing
  let runs = (q.get("runs") || "").split(",").filter(Boolean);
  const sweep = q.get("sweep") || "";  // a sweep's runs (picked from the runs table's sweeps)
  if (!runs.length && !sweep) {
    if (stale(seq)) return;
    app.replaceChildren(el("h1", { text: "Workspace" }), el("p", { class: "muted", text: "Pick runs in the runs table (checkboxes) and press Workspace, or open one from a run page." }));
    return;
  }
  // one read for every run (and, for a small workspace, its panels start being read at once)
  const infos = (await get("api/workspace?" + new URLSearchParams({ runs: runs.join(","), sweep, keys: q.get("keys") || "" }))).runs;
  if (!runs.length) runs = infos.map((i) => i.run_id);
  const colourOf = new Map(runs.map((r, i) => [r, PALETTE[i % PALETTE.length]]));
  const hidden = new Set((q.get("hide") || "").split(",").filter(Boolean));
  const by = q.get("group") || "", band = q.get("band") || "std";
  const smoothing = +(q.get("smooth") || 0), log = q.get("log") === "1", x = q.get("x") || "";
  const size = q.get("size") || "m";
  let pattern = null;
  try { pattern = q.get("keys") ? new RegExp(q.get("keys"), "i") : null; } catch (e) { pattern = null; }
  const allKeys = [...new Set(infos.flatMap((i) => i.keys))].sort();
  const keys = allKeys.filter((k) => !pattern || pattern.test(k));
  const configKeys = [...new Set(infos.flatMap((i) => Object.keys(i.config || {})))].sort();
  const set = (change) => go("workspace", { ...Object.fromEntries(q), ...change });
  const legend = el("div", { id: "ws-legend", class: "legend" }, runs.map((r) =>
    el("label", { class: "ws-run", "data-run": r },
      el("input", { type: "checkbox", checked: !hidden.has(r), onchange: (e) => {
        e.target.checked ? hidden.delete(r) : hidden.add(r);
        set({ hide: [...hidden].join(",") });
      } }),
      el("span", { class: "swatch", style: `background:${colourOf.get(r)}` }), " ", runLink(r, (infos.find((i) => i.run_id === r) || {}).name || r))));
  const toolbar = el("div", { class: "toolbar" },
    "keys:", el("input", { id: "ws-keys", placeholder: "regular expression", value: q.get("keys") || "", onchange: (e) => set({ keys: e.target.value }) }),
    "group by:", el("select", { id: "ws-group", onchange: (e) => set({ group: e.target.value }) },
      [["", "nothing"], ["group", "group"], ["job_type", "job type"], ["sweep", "sweep"], ...configKeys.map((k) => ["config." + k, "config." + k])]
        .map(([v, t]) => el("option", { value: v, selected: v === by, text: t }))),
    "band:", el("select", { id: "ws-band", onchange: (e) => set({ band: e.target.value }) },
      [["std", "± std"], ["minmax", "min – max"]].map(([v, t]) => el("option", { value: v, selected: v === band, text: t }))),
    // x: the step, wall time, relative time (seconds since the run started: `_runtime`) or any
    // logged key as a step metric (its value at each step, as define_metric's step_metric)
    "x:", el("select", { id: "ws-x", onchange: (e) => set({ x: e.target.value }) },
      [["", "auto"], ["step", "step"], ["wall", "wall time"], ["_runtime", "relative time"], ...allKeys.map((k) => [k, "x = " + k])]
        .map(([v, t]) => el("option", { value: v, selected: v === x, text: t }))),
    "smoothing:", el("input", { type: "range", id: "ws-smoothing", min: 0, max: 0.99, step: 0.01, value: smoothing, onchange: (e) => set({ smooth: e.target.value }) }),
    el("label", {}, el("input", { type: "checkbox", id: "ws-log", checked: log, onchange: (e) => set({ log: e.target.checked ? "1" : "" }) }), " log scale"),
    "panels:", el("select", { id: "ws-size", onchange: (e) => set({ size: e.target.value }) },
      [["s", "small"], ["m", "medium"], ["l", "large"]].map(([v, t]) => el("option", { value: v, selected: v === size, text: t }))));
  const grid = el("div", { id: "ws-grid", class: "grid ws-" + size });
  if (stale(seq)) return;
  app.replaceChildren(el("h1", { text: `Workspace: ${runs.length} runs${sweep && !q.get("runs") ? " of sweep " + sweep : ""}, ${keys.length} keys` }), toolbar, legend, grid);
  const shown = runs.filter((r) => !hidden.has(r));
  const zoom = { lo: undefined, hi: undefined };
  const panels = [];
  const drawPanel = async (key, box) => {
    const query = new URLSearchParams({ runs: shown.join(","), key, x });
    if (zoom.lo !== undefined) { query.set("lo", zoom.lo); query.set("hi", zoom.hi); }
    box.replaceChildren();
    if (!shown.length) return;
    if (by) {
      const data = await get("api/group?" + new URLSearchParams({ runs: shown.join(","), key, by, band, buckets: 200, x: x === "wall" ? "" : x }));
      const parts = data.groups.flatMap((g) => [{ x: g.x, y: g.mean }, { x: g.x, y: g.lo }, { x: g.x, y: g.hi }]);
      const { xs, ys } = mergeXs(parts);
      const series = [], bands = [];
      data.groups.forEach((g, i) => {
        const colour = PALETTE[i % PALETTE.length];
        const base = series.length + 1;
        series.push({ label: `${g.label} (${g.runs} runs)`, color: colour, ys: smooth(ys[3 * i], smoothing), width: 2 },
          { label: `${g.label} low`, color: colour + "55", ys: ys[3 * i + 1], width: 0.5 },
          { label: `${g.label} high`, color: colour + "55", ys: ys[3 * i + 2], width: 0.5 });
        bands.push({ series: [base + 2, base + 1], fill: colour + "22" });
      });
      box.dataset.groups = String(data.groups.length);
      box.dataset.bands = String(bands.length);
      box.dataset.runs = data.groups.map((g) => g.runs).join(",");
      box.dataset.xLabel = data.x;
      makeChart(box, { xs, series, bands, markers: [], logScale: log, xLabel: data.x || "step", yLabel: key });
      return;
    }
    // each run's line on one x grid shared by all runs (api/panel): no alignment here
    query.set("buckets", Math.max(100, Math.min(1000, Math.round(box.clientWidth || 400))));
    const data = await get("api/panel?" + query);
    const names = new Map(infos.map((i) => [i.run_id, i.name || i.run_id]));
    box.dataset.lines = String(data.lines.length);
    box.dataset.series = String(new Set(data.lines.map((l) => l.run_id)).size);
    box.dataset.xLabel = data.x_label;
    box.dataset.points = String(data.lines.reduce((n, l) => n + l.points, 0));
    makeChart(box, { xs: data.x, xLabel: data.x_label, yLabel: key, logScale: log, markers: data.markers,
      onZoom: (lo, hi) => { zoom.lo = lo; zoom.hi = hi; panels.forEach((p) => p.draw()); },
      // a run's inherited steps (before it was forked) dashed, its own solid, in its colour
      series: data.lines.map((l) => ({ label: names.get(l.run_id) + (l.part === "inherited" ? " (inherited)" : ""),
        color: colourOf.get(l.run_id), dash: l.part === "inherited" ? [4, 3] : undefined, ys: smooth(l.y, smoothing) })) });
  };
  const lazy = new IntersectionObserver((entries) => {
    for (const entry of entries) if (entry.isIntersecting) { lazy.unobserve(entry.target); entry.target.draw(); }
  }, { rootMargin: "600px" });
  state.observers.push(lazy);
  for (const key of keys) {
    const box = el("div", { class: "chart-body" });
    const panel = el("div", { class: "chart ws-panel", "data-key": key }, el("h3", { text: key }), box);
    panel.draw = () => drawPanel(key, box).catch((e) => box.replaceChildren(el("div", { class: "error", text: e.message })));
    panels.push(panel);
    grid.appendChild(panel);
    lazy.observe(panel);
  }
}
