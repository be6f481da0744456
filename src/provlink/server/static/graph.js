// Which nodes a view shows (the whole upstream chain, one hop downstream) and how they are
// laid out and drawn: SVG, left to right by depth. Hand-written because the page loads no
// library (strict CSP, works offline) and a layered DAG layout is a few dozen lines.

const NODE_W = 184, NODE_H = 58, COL_GAP = 40, ROW_GAP = 16;
const MODEL_NAME = /(^|\/)models\/([^/]+)\/([^/]+)$/;

export function modelOf(node) {
  if (node.type !== "DATASET") return null;
  const m = MODEL_NAME.exec(node.data.name || "");
  if (!m) return null;
  const facet = (node.data.facets || {}).mlflow_model_version || {};
  return { name: facet.name || m[2], version: String(facet.version || m[3]), facet };
}
export const kindOf = (node) => (modelOf(node) ? "MODEL" : node.type);
export const digestOf = (node) => ((node.data.facets || {}).version || {}).datasetVersion;

function edgesOf(nodes) {
  const seen = new Map();
  for (const node of nodes.values())
    for (const e of [...node.inEdges, ...node.outEdges]) seen.set(e.origin + ">" + e.destination, e);
  return [...seen.values()];
}

/** The ids to draw for `startId`: everything upstream of it, and one job hop downstream
 *  (the jobs reading it and what they write; a job's own outputs). `hops` is the most
 *  job hops to a node upstream, so the caller can tell when the walk may have been cut short. */
export function chainView(graph, startId) {
  const upstream = new Map(), downstream = new Map();
  for (const e of edgesOf(graph)) {
    if (!upstream.has(e.destination)) upstream.set(e.destination, []);
    upstream.get(e.destination).push(e.origin);
    if (!downstream.has(e.origin)) downstream.set(e.origin, []);
    downstream.get(e.origin).push(e.destination);
  }
  const ids = new Set([startId]);
  const jobHops = new Map([[startId, 0]]);
  const todo = [startId];  // breadth first: each node's fewest job hops from the start
  let hops = 0;
  for (let next = 0; next < todo.length; next++) {
    const id = todo[next];
    for (const up of upstream.get(id) || []) {
      if (ids.has(up)) continue;
      const h = jobHops.get(id) + (graph.get(up)?.type === "JOB" ? 1 : 0);
      ids.add(up); jobHops.set(up, h); hops = Math.max(hops, h);
      todo.push(up);
    }
  }
  const start = graph.get(startId);
  for (const next of downstream.get(startId) || []) {
    ids.add(next);
    if (start && start.type !== "JOB") for (const out of downstream.get(next) || []) ids.add(out);
  }
  return { ids: new Set([...ids].filter((id) => graph.has(id))), hops };
}

/** Columns by longest path from the sources; sources sit just left of what reads them;
 *  rows ordered by a few barycentre sweeps so edges cross less. */
function layout(nodes, edges) {
  const preds = new Map(), succs = new Map();
  for (const id of nodes.keys()) { preds.set(id, []); succs.set(id, []); }
  for (const e of edges) { preds.get(e.destination).push(e.origin); succs.get(e.origin).push(e.destination); }
  const level = new Map(), visiting = new Set();
  function depth(id) {
    if (level.has(id)) return level.get(id);
    if (visiting.has(id)) return 0;  // a cycle: cut it here
    visiting.add(id);
    let d = 0;
    for (const p of preds.get(id)) d = Math.max(d, depth(p) + 1);
    visiting.delete(id);
    level.set(id, d);
    return d;
  }
  for (const id of nodes.keys()) depth(id);
  for (const id of nodes.keys())
    if (!preds.get(id).length && succs.get(id).length)
      level.set(id, Math.max(0, Math.min(...succs.get(id).map((s) => level.get(s))) - 1));
  const columns = new Map();
  for (const id of [...nodes.keys()].sort()) {
    const l = level.get(id);
    if (!columns.has(l)) columns.set(l, []);
    columns.get(l).push(id);
  }
  const keys = [...columns.keys()].sort((a, b) => a - b);
  const row = new Map();
  const index = () => { for (const column of columns.values()) column.forEach((id, r) => row.set(id, r)); };
  index();
  for (let pass = 0; pass < 4; pass++) {
    const forward = pass % 2 === 0;
    for (const l of forward ? keys : [...keys].reverse()) {
      const near = forward ? preds : succs;
      const centre = (id) => {
        const rows = near.get(id).map((n) => row.get(n));
        return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : row.get(id);
      };
      columns.get(l).sort((a, b) => centre(a) - centre(b));
      index();
    }
  }
  const pos = new Map();
  keys.forEach((l, x) => columns.get(l).forEach((id, r) =>
    pos.set(id, { x: 20 + x * (NODE_W + COL_GAP), y: 30 + r * (NODE_H + ROW_GAP) })));
  return pos;
}

function svgEl(name, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

function short(text, max) { return text.length > max ? "…" + text.slice(text.length - max + 1) : text; }

function detailLine(node, aliases) {
  const model = modelOf(node);
  if (model) {
    const names = aliases || model.facet.aliases || [];
    return "v" + model.version + (names.length ? " · @" + names.join(" @") : "");
  }
  if (node.type === "JOB") return node.data.latestRun ? node.data.latestRun.state : "";
  const digest = digestOf(node);
  return digest ? short(digest, 30) : "";
}

/** Draw `nodes` (id → Marquez node) into the SVG; `onPick(id)` runs on click / Enter;
 *  `reveal` scrolls the opened node into view (once, when a node is opened). */
export function render(svg, nodes, { start, selected, aliases, onPick, reveal }) {
  svg.replaceChildren();
  const defs = svgEl("defs");
  const marker = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(svgEl("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }));
  defs.append(marker);
  svg.append(defs);
  const edges = edgesOf(nodes).filter((e) => nodes.has(e.origin) && nodes.has(e.destination));
  const pos = layout(nodes, edges);
  for (const e of edges) {
    const a = pos.get(e.origin), b = pos.get(e.destination);
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    const span = Math.round((x2 - x1 + NODE_W) / (NODE_W + COL_GAP));
    // edges that skip columns (or run backwards) arc over the nodes in between
    const d = span !== 1
      ? `M${x1},${y1} C${x1 + COL_GAP},${y1 - 30 - 8 * Math.abs(span)} ${x2 - COL_GAP},${y2 - 30 - 8 * Math.abs(span)} ${x2},${y2}`
      : `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
    svg.append(svgEl("path", { class: "edge", d, "data-edge": e.origin + ">" + e.destination }));
  }
  let width = 0, height = 0;
  for (const [id, node] of nodes) {
    const p = pos.get(id);
    width = Math.max(width, p.x + NODE_W + 20);
    height = Math.max(height, p.y + NODE_H + 20);
    const classes = ["node", kindOf(node)];
    if (node.type === "JOB" && /^mlflow_registry\./.test(node.data.name || "")) classes.push("registry");
    if (id === start) classes.push("start");
    if (id === selected) classes.push("selected");
    const g = svgEl("g", { class: classes.join(" "), transform: `translate(${p.x},${p.y})`, "data-node-id": id, tabindex: 0 });
    const title = svgEl("title");
    title.textContent = id;
    g.append(title, svgEl("rect", { width: NODE_W, height: NODE_H }));
    const lines = [
      [node.data.name || id, "name", 23],
      [kindOf(node) + " · " + short(node.data.namespace || "", 24 - kindOf(node).length), "sub", 27],
      [detailLine(node, aliases.get(id)), "info", 26],
    ];
    lines.forEach(([text, cls, max], i) => {
      const t = svgEl("text", { x: 9, y: 18 + i * 16, class: cls });
      t.textContent = short(text, max);
      g.append(t);
    });
    g.addEventListener("click", () => onPick(id));
    g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") onPick(id); });
    svg.append(g);
  }
  // shrink wide graphs to the canvas width, but not below legible (then the canvas scrolls)
  const available = svg.parentElement.clientWidth || width;
  const scale = Math.max(0.6, Math.min(1, available / Math.max(width, 1)));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", Math.floor(width * scale));
  svg.setAttribute("height", Math.floor(height * scale));
  svg.dataset.nodes = String(nodes.size);
  svg.dataset.edges = String(edges.length);
  if (reveal && pos.has(start) && width * scale > available)  // wider than the canvas: show the opened node
    svg.parentElement.scrollLeft = Math.max(0, (pos.get(start).x + NODE_W) * scale - available + 20);
}
