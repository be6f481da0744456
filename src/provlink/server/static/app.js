// provlink lineage page: plain JS over Marquez's API (no CDN, works offline).
"use strict";

const API = "/api/v1";
const NODE_W = 190, NODE_H = 44, COL_GAP = 60, ROW_GAP = 22;
const state = { nodes: new Map(), expanded: new Set(), selected: null };

function apiKey() { return sessionStorage.getItem("provlink-api-key"); }

async function api(path, params) {
  const url = new URL(API + path, location.origin);
  for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, v);
  const headers = apiKey() ? { Authorization: "Bearer " + apiKey() } : {};
  const response = await fetch(url, { headers });
  if (response.status === 401) {
    document.getElementById("key-form").hidden = false;
    throw new Error("an API key with read scope is needed");
  }
  if (!response.ok) throw new Error((await response.json()).message || response.statusText);
  return response.json();
}

const enc = (s) => encodeURIComponent(s);
const isModel = (node) => node.type === "DATASET" && /(^|\/)models\/[^/]+\/[^/]+$/.test(node.data.name || "");
const kindOf = (node) => (isModel(node) ? "MODEL" : node.type);
function setStatus(text) { document.getElementById("status").textContent = text || ""; }

async function search(q) {
  const list = document.getElementById("results");
  list.replaceChildren();
  if (!q) return;
  const found = await api("/search", { q, limit: 20 });
  for (const result of found.results) {
    const li = document.createElement("li");
    const badge = document.createElement("span");
    const model = result.type === "DATASET" && /(^|\/)models\/[^/]+\/[^/]+$/.test(result.name);
    badge.className = "kind " + (model ? "MODEL" : result.type);
    badge.textContent = model ? "MODEL" : result.type;
    li.append(badge, document.createTextNode(result.name + "  (" + result.namespace + ")"));
    li.dataset.nodeId = result.nodeId;
    li.addEventListener("click", () => openNode(result.nodeId, true));
    list.append(li);
  }
  if (!found.results.length) list.innerHTML = "<li class='hint'>No match.</li>";
}

async function openNode(nodeId, reset) {
  try {
    if (reset) { state.nodes.clear(); state.expanded.clear(); }
    await expand(nodeId);
    select(nodeId);
  } catch (error) { setStatus(error.message); }
}

async function expand(nodeId) {
  setStatus("Loading…");
  // depth 0: the jobs next to this node and their datasets, i.e. one step per click
  const graph = await api("/lineage", { nodeId, depth: 0 });
  for (const node of graph.graph) {
    const known = state.nodes.get(node.id);
    if (!known) state.nodes.set(node.id, node);
    else {
      const seen = new Set([...known.inEdges, ...known.outEdges].map((e) => e.origin + ">" + e.destination));
      for (const e of node.inEdges) if (!seen.has(e.origin + ">" + e.destination)) known.inEdges.push(e);
      for (const e of node.outEdges) if (!seen.has(e.origin + ">" + e.destination)) known.outEdges.push(e);
    }
  }
  state.expanded.add(nodeId);
  setStatus("");
  render();
}

function layout() {
  const ids = [...state.nodes.keys()];
  const preds = new Map(ids.map((id) => [id, []]));
  for (const node of state.nodes.values())
    for (const e of node.outEdges) if (preds.has(e.destination)) preds.get(e.destination).push(e.origin);
  const level = new Map();
  const visiting = new Set();
  function depth(id) {
    if (level.has(id)) return level.get(id);
    if (visiting.has(id)) return 0;
    visiting.add(id);
    let d = 0;
    for (const p of preds.get(id) || []) if (state.nodes.has(p)) d = Math.max(d, depth(p) + 1);
    visiting.delete(id);
    level.set(id, d);
    return d;
  }
  ids.forEach(depth);
  const columns = new Map();
  for (const id of ids.sort()) {
    const l = level.get(id);
    if (!columns.has(l)) columns.set(l, []);
    columns.get(l).push(id);
  }
  const pos = new Map();
  for (const [l, column] of columns)
    column.forEach((id, row) => pos.set(id, { x: 20 + l * (NODE_W + COL_GAP), y: 80 + row * (NODE_H + ROW_GAP) }));
  return pos;
}

function svgEl(name, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

function short(text, max) { return text.length > max ? "…" + text.slice(text.length - max + 1) : text; }

function render() {
  const svg = document.getElementById("graph");
  svg.replaceChildren();
  const defs = svgEl("defs");
  const marker = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(svgEl("path", { d: "M0,0 L10,5 L0,10 z", fill: "#a3abb9" }));
  defs.append(marker);
  svg.append(defs);
  const pos = layout();
  let width = 0, height = 0;
  for (const node of state.nodes.values())
    for (const e of node.outEdges) {
      const a = pos.get(e.origin), b = pos.get(e.destination);
      if (!a || !b) continue;
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      const span = Math.round((x2 - x1 + NODE_W) / (NODE_W + COL_GAP));
      // edges that skip columns arc over the nodes in between instead of running through them
      const d = span > 1
        ? `M${x1},${y1} C${x1 + COL_GAP},${y1 - 30 - 8 * span} ${x2 - COL_GAP},${y2 - 30 - 8 * span} ${x2},${y2}`
        : `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
      svg.append(svgEl("path", { class: "edge", d }));
    }
  for (const [id, node] of state.nodes) {
    const p = pos.get(id);
    width = Math.max(width, p.x + NODE_W + 20);
    height = Math.max(height, p.y + NODE_H + 20);
    const classes = ["node", kindOf(node)];
    if (state.expanded.has(id)) classes.push("expanded");
    if (state.selected === id) classes.push("selected");
    const g = svgEl("g", { class: classes.join(" "), transform: `translate(${p.x},${p.y})`, "data-node-id": id, tabindex: 0 });
    const title = svgEl("title");
    title.textContent = id;
    g.append(title, svgEl("rect", { width: NODE_W, height: NODE_H }));
    const name = svgEl("text", { x: 10, y: 18 });
    name.textContent = short(node.data.name || id, 27);
    const sub = svgEl("text", { x: 10, y: 34, class: "sub" });
    sub.textContent = kindOf(node) + " · " + short(node.data.namespace || "", 24);
    g.append(name, sub);
    g.addEventListener("click", () => onNodeClick(id));
    g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") onNodeClick(id); });
    svg.append(g);
  }
  // shrink wide graphs to the canvas width (never enlarge small ones)
  const available = document.getElementById("canvas").clientWidth || width;
  const scale = Math.min(1, available / Math.max(width, 1));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", Math.floor(width * scale));
  svg.setAttribute("height", Math.floor(height * scale));
  svg.dataset.nodes = String(state.nodes.size);
}

async function onNodeClick(id) {
  try {
    if (!state.expanded.has(id)) await expand(id);
    select(id);
  } catch (error) { setStatus(error.message); }
}

function dl(pairs) {
  const list = document.createElement("dl");
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = typeof v === "object" ? JSON.stringify(v) : String(v);
    list.append(dt, dd);
  }
  return list;
}

function facetsBlock(title, facets) {
  const wrap = document.createElement("div");
  if (!facets || !Object.keys(facets).length) return wrap;
  const h = document.createElement("h3"); h.textContent = title;
  const pre = document.createElement("pre"); pre.textContent = JSON.stringify(facets, null, 2);
  wrap.append(h, pre);
  return wrap;
}

async function select(id) {
  state.selected = id;
  render();
  const node = state.nodes.get(id);
  const box = document.getElementById("details");
  box.replaceChildren();
  if (!node) return;
  const d = node.data;
  const h = document.createElement("h2"); h.textContent = d.name;
  box.append(h);
  if (node.type === "JOB") {
    box.append(dl([["kind", "job"], ["namespace", d.namespace], ["type", d.type], ["location", d.location],
      ["description", d.description], ["version", d.currentVersion], ["updated", d.updatedAt]]));
    box.append(facetsBlock("Job facets", d.facets));
    const runs = await api(`/namespaces/${enc(d.namespace)}/jobs/${enc(d.name)}/runs`, { limit: 5 });
    for (const run of runs.runs) {
      const h3 = document.createElement("h3"); h3.textContent = "Run " + run.id;
      box.append(h3, dl([["state", run.state], ["started", run.startedAt], ["ended", run.endedAt], ["duration ms", run.durationMs]]));
      box.append(facetsBlock("Run facets", run.facets));
    }
  } else {
    box.append(dl([["kind", isModel(node) ? "model version" : "dataset"], ["namespace", d.namespace],
      ["source", d.sourceName], ["fields", (d.fields || []).map((f) => f.name + ":" + f.type).join(", ")],
      ["tags", (d.tags || []).join(", ")], ["version", d.currentVersion], ["last modified", d.lastModifiedAt]]));
    box.append(facetsBlock("Dataset facets", d.facets));
  }
}

document.getElementById("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); search(document.getElementById("search").value).catch((e) => setStatus(e.message)); });
document.getElementById("search").addEventListener("input", (ev) => { search(ev.target.value).catch((e) => setStatus(e.message)); });
document.getElementById("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("provlink-api-key", document.getElementById("api-key").value);
  document.getElementById("key-form").hidden = true;
  setStatus("");
});
const initial = new URLSearchParams(location.search).get("nodeId");
if (initial) openNode(initial, true);
