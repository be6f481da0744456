// provlink lineage page: plain JS over Marquez's API (no CDN, works offline, strict CSP).
// Opening a node draws its whole upstream chain and one hop downstream in one view.

import { api, enc, useKey } from "./api.js";
import { showDetails } from "./details.js";
import { chainView, kindOf, render } from "./graph.js";

const DEPTH = 20;  // job hops the lineage walk goes at most (Marquez's default depth)
const state = { nodes: new Map(), start: null, selected: null, aliases: new Map(), linkedRun: null, reveal: false };

function setStatus(text) { document.getElementById("status").textContent = text || ""; }

async function search(q) {
  const list = document.getElementById("results");
  list.replaceChildren();
  if (!q) return;
  const found = await api("/search", { q, limit: 20 });
  for (const result of found.results) {
    const li = document.createElement("li");
    const badge = document.createElement("span");
    const kind = kindOf({ type: result.type, data: { name: result.name } });
    badge.className = "kind " + kind;
    badge.textContent = kind;
    li.append(badge, document.createTextNode(result.name + "  (" + result.namespace + ")"));
    li.dataset.nodeId = result.nodeId;
    li.addEventListener("click", () => navigate(result.nodeId));
    list.append(li);
  }
  if (!found.results.length) list.innerHTML = "<li class='hint'>No match.</li>";
}

function navigate(nodeId) {
  history.pushState(null, "", "/?nodeId=" + enc(nodeId));
  openNode(nodeId, null);
}

async function openNode(nodeId, linkedRun) {
  try {
    setStatus("Loading…");
    const found = await api("/lineage", { nodeId, depth: DEPTH });
    const graph = new Map(found.graph.map((node) => [node.id, node]));
    const { ids, hops } = chainView(graph, nodeId);
    state.nodes = new Map([...ids].map((id) => [id, graph.get(id)]));
    state.start = nodeId;
    state.aliases = new Map();
    state.linkedRun = linkedRun;
    state.reveal = true;
    // the walk's last level is DEPTH job hops from a job, DEPTH + 1 from a dataset (its
    // producers are level 0): a chain reaching that far may go on beyond it
    const last = nodeId.startsWith("job:") ? DEPTH : DEPTH + 1;
    setStatus(hops >= last ? `The walk stops ${last} job hops upstream; open the leftmost nodes to go further.` : "");
    await select(nodeId);
  } catch (error) { setStatus(error.message); }
}

function draw() {
  render(document.getElementById("graph"), state.nodes, {
    start: state.start, selected: state.selected, aliases: state.aliases, onPick: pick, reveal: state.reveal,
  });
  state.reveal = false;
}

function pick(id) { select(id).catch((error) => setStatus(error.message)); }

async function select(id) {
  state.selected = id;
  draw();
  const panel = document.createElement("div");  // a fresh panel: late answers for an old pick land nowhere
  document.getElementById("details").replaceChildren(panel);
  await showDetails(panel, id, state.nodes.get(id), {
    linkedRun: id === state.start ? state.linkedRun : null,
    onAliases: (aliases) => { state.aliases.set(id, aliases); draw(); },
  });
}

document.getElementById("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); search(document.getElementById("search").value).catch((e) => setStatus(e.message)); });
document.getElementById("search").addEventListener("input", (ev) => { search(ev.target.value).catch((e) => setStatus(e.message)); });
document.getElementById("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  useKey(document.getElementById("api-key").value);
  document.getElementById("key-form").hidden = true;
  fromLocation();
});

function fromLocation() {
  const params = new URLSearchParams(location.search);
  if (params.get("nodeId")) openNode(params.get("nodeId"), params.get("runId"));
  else setStatus("");
}
window.addEventListener("popstate", fromLocation);
fromLocation();
