"use strict";
// The population view (#29): a project's runs as lanes on one step axis, so a PBT population
// reads by exploit generation, left to right. Each lane is a run's segments in order, each a
// strip coloured by the chosen metric over its steps; a fork that started a new run is a line
// from its parent's lane at the fork step; an exploit (a member re-forked from a better one, as
// PBT continues a trial from another's checkpoint) is a dashed arc from the donor's lane; each
// round of exploits is a labelled guide. A rewind's abandoned steps are drawn faded.

function short(id) { return id.length > 18 ? id.slice(0, 8) + "…" + id.slice(-8) : id; }
function rounds(steps, span) {  // exploit steps within 2% of the axis of each other are one round
  const sorted = [...steps].sort((a, b) => a - b), out = [];
  for (const s of sorted) {
    if (out.length && s - out[out.length - 1].last <= span * 0.02) { out[out.length - 1].last = s; out[out.length - 1].n += 1; }
    else out.push({ first: s, last: s, n: 1 });
  }
  return out;
}

async function viewPopulation(q) {
  const seq = state.seq;  // a newer navigation started since? then draw nothing
  const projects = await get("api/projects");
  const project = q.get("project") || (projects[0] || {}).project || "";
  const data = project ? await get("api/population?" + new URLSearchParams({ project, metric: q.get("metric") || "" })) : { nodes: [], metrics: [], metric: null, steps: [0, 0] };
  const nodes = data.nodes, chosen = data.metric || "";
  const [lo, hi] = data.steps;
  const L = 160, R = 150, T = 40, LH = 26;
  const W = Math.max(760, app.clientWidth - 40), H = T + nodes.length * LH + 26;
  const xOf = (step) => L + ((step - lo) / Math.max(1, hi + 1 - lo)) * (W - L - R);  // step s is [s, s+1)
  const laneOf = new Map(nodes.map((n, i) => [n.run_id, T + i * LH + LH / 2]));
  const strip = nodes.flatMap((n) => n.segments.flatMap((s) => s.values)).filter((v) => v !== null);
  const vlo = Math.min(...strip), vhi = Math.max(...strip);
  // a metric over decades (a loss from 2.5 to 0.02) is coloured on a log scale
  const logged = vlo > 0 && vhi / vlo > 20, f = logged ? Math.log : (v) => v;
  const shade = (v) => (v === null ? "#ccc" : colour(vhi > vlo ? (f(v) - f(vlo)) / (f(vhi) - f(vlo)) : 0.5));
  const svg = svgEl("svg", { width: W, height: H, id: "population" });
  // the step axis: ticks and light guides
  const tick = Math.pow(10, Math.floor(Math.log10(Math.max(1, (hi - lo) / 6))));
  const every = [1, 2, 5, 10].map((m) => m * tick).find((t) => (hi - lo) / t <= 8) || 10 * tick;
  for (let s = Math.ceil(lo / every) * every; s <= hi; s += every) {
    svg.append(svgEl("line", { x1: xOf(s), x2: xOf(s), y1: T - 6, y2: H - 18, stroke: "#eef0f3", class: "grid" }),
      Object.assign(svgEl("text", { x: xOf(s), y: T - 10, "text-anchor": "middle", fill: "#6b7482" }), { textContent: fmt(s) }));
  }
  svg.append(Object.assign(svgEl("text", { x: W - R + 8, y: T - 10, fill: "#6b7482" }), { textContent: "step" }));
  // each round of exploits (PBT's generations): a labelled guide
  const exploitRounds = rounds(nodes.flatMap((n) => n.exploits.map((e) => e.step)), hi - lo);
  exploitRounds.forEach((r, i) => {
    const x = xOf((r.first + r.last) / 2);
    svg.append(svgEl("line", { x1: x, x2: x, y1: T - 2, y2: H - 18, stroke: "#d08a3c", "stroke-opacity": 0.35, class: "round" }),
      Object.assign(svgEl("text", { x, y: H - 6, "text-anchor": "middle", fill: "#d08a3c", class: "round-label" }), { textContent: `exploit round ${i + 1} (${r.n})` }));
  });
  // lanes: segment strips coloured by the metric; a rewind's abandoned steps faded
  for (const n of nodes) {
    const y = laneOf.get(n.run_id);
    n.segments.forEach((s, k) => {
      if (s.first === null || s.first === undefined) return;
      const next = n.segments[k + 1];
      // the run moved on from its step `cutoff` (a rewind, or an exploit's re-fork): later steps
      // of this segment are not in its history
      const cut = next && next.cutoff !== null && next.cutoff !== undefined ? next.cutoff : Infinity;
      const g = svgEl("g", { class: "segment", "data-run": n.run_id, "data-segment": s.segment });
      s.x.forEach((x0, j) => {
        const x1 = j + 1 < s.x.length ? s.x[j + 1] : s.last + 1;
        g.appendChild(svgEl("rect", { x: xOf(x0), y: y - 6, width: Math.max(1, xOf(x1) - xOf(x0) + 0.5), height: 12, fill: shade(s.values[j]), opacity: x0 > cut ? 0.3 : 1, class: x0 > cut ? "abandoned" : null }));
      });
      const how = s.kind === "fork" && s.from ? `fork of ${s.from} @${s.cutoff}` : s.kind === "rewind" ? `rewound to @${s.cutoff}` : "start";
      g.appendChild(svgTitle(`${n.run_id} segment ${s.segment} (${how}): steps ${s.first}–${s.last}`));
      svg.appendChild(g);
    });
  }
  // forks that started a new run: from the parent's lane at the fork step
  for (const n of nodes) {
    if (!n.parent || !laneOf.has(n.parent) || n.fork_step === null) continue;
    const x = xOf(n.fork_step), y1 = laneOf.get(n.parent), y2 = laneOf.get(n.run_id);
    const line = svgEl("line", { x1: x, y1, x2: x, y2, stroke: "#555", "stroke-width": 1.5, class: "fork", "data-from": n.parent, "data-run": n.run_id });
    line.appendChild(svgTitle(`${n.run_id}: forked from ${n.parent} @${n.fork_step}`));
    svg.append(line, svgEl("circle", { cx: x, cy: y1, r: 3, fill: "#555" }));
  }
  // exploits: a member re-forked from another's history, a dashed arc from the donor's lane
  let exploited = 0;
  for (const n of nodes) {
    for (const e of n.exploits) {
      if (!laneOf.has(e.from)) continue;
      exploited += 1;
      const x = xOf(e.step), y1 = laneOf.get(e.from), y2 = laneOf.get(n.run_id);
      const bend = 14 + Math.min(60, Math.abs(y2 - y1) / 6);
      const path = svgEl("path", { d: `M ${x} ${y1} Q ${x - bend} ${(y1 + y2) / 2} ${x} ${y2}`, fill: "none", stroke: "#d08a3c", "stroke-width": 1.4, "stroke-dasharray": "4 3", class: "exploit", "data-from": e.from, "data-run": n.run_id });
      path.appendChild(svgTitle(`${n.run_id} segment ${e.segment}: exploited ${e.from} @${e.step}`));
      svg.appendChild(path);
    }
  }
  // each lane's name (left) and its run's final value (right); a click opens the run
  for (const n of nodes) {
    const y = laneOf.get(n.run_id), segs = n.segments.filter((s) => s.last !== null && s.last !== undefined);
    const end = segs.length ? xOf(Math.max(...segs.map((s) => s.last)) + 1) : L;
    const g = svgEl("g", { class: "member", "data-run": n.run_id, "data-generation": n.generation });
    g.style.cursor = "pointer";
    g.addEventListener("click", () => go("run/" + encodeURIComponent(n.run_id)));
    g.append(Object.assign(svgEl("text", { x: L - 8, y: y + 4, "text-anchor": "end" }), { textContent: short(n.run_id) }),
      svgEl("circle", { cx: end + 8, cy: y, r: 6, fill: shade(n.value), stroke: "#fff" }),
      Object.assign(svgEl("text", { x: end + 18, y: y + 4, fill: "#6b7482" }), { textContent: n.value === null ? "" : fmt(n.value) }),
      svgTitle(`${n.run_id}  ${chosen}=${fmt(n.value)}  (${n.state}; generation ${n.generation})`));
    svg.appendChild(g);
  }
  if (stale(seq)) return;
  app.replaceChildren(el("h1", { text: "Population" }),
    el("div", { class: "toolbar" },
      el("select", { id: "pop-project", onchange: (e) => go("population", { project: e.target.value }) }, projects.map((p) => el("option", { value: p.project, selected: p.project === project, text: p.project }))),
      "colour by:", el("select", { id: "pop-metric", onchange: (e) => go("population", { project, metric: e.target.value }) }, data.metrics.map((m) => el("option", { value: m, selected: m === chosen, text: m }))),
      strip.length ? el("span", { class: "muted" }, el("span", { class: "legend-swatch", style: `background:${colour(0)}` }), fmt(vlo), " … ", el("span", { class: "legend-swatch", style: `background:${colour(1)}` }), fmt(vhi), logged ? " (log scale)" : "") : "",
      el("span", { class: "muted", text: `${nodes.length} runs, steps left to right` +
        (exploited ? `; ${exploited} exploit${exploited > 1 ? "s" : ""} in ${exploitRounds.length} round${exploitRounds.length > 1 ? "s" : ""} (dashed: a member continued from another's checkpoint)` : "") })),
    el("div", { class: "tree", style: "overflow:auto" }, svg));
}
