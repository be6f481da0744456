// The side panel: what a node is, and for a model version its aliases and promotion
// history (the runs of job `mlflow_registry.<model>`, one per registry action).

import { api, enc } from "./api.js";
import { digestOf, modelOf } from "./graph.js";

const ACTION_FACET = "mlflow_registry_action";

function el(name, text, cls) {
  const e = document.createElement(name);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function dl(pairs) {
  const list = el("dl");
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "" || (Array.isArray(v) && !v.length)) continue;
    const dd = el("dd", Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : String(v));
    dd.dataset.key = k;
    list.append(el("dt", k), dd);
  }
  return list;
}

function facetsBlock(title, facets) {
  const wrap = el("details");
  if (!facets || !Object.keys(facets).length) return wrap;
  wrap.append(el("summary", title + " (" + Object.keys(facets).join(", ") + ")"), el("pre", JSON.stringify(facets, null, 2)));
  return wrap;
}

/** Marquez's tags, and the OpenLineage `tags` facet's key=value pairs. */
function tagsOf(data) {
  const facet = ((data.facets || {}).tags || {}).tags || [];
  return [...(data.tags || []), ...facet.map((t) => (t.value ? t.key + "=" + t.value : t.key))];
}

function openHere(id) {
  const a = el("a", "Show the lineage from here", "open-here");
  a.href = "/?nodeId=" + enc(id);
  return a;
}

/** Every registry action on `model` (oldest first), read from its registry job's runs. */
async function registryActions(namespace, model) {
  let page;
  try {
    page = await api(`/namespaces/${enc(namespace)}/jobs/${enc("mlflow_registry." + model)}/runs`, { limit: 1000 });
  } catch (error) {
    if (error.status === 404) return { actions: [], total: 0 };
    throw error;
  }
  const actions = page.runs
    .map((run) => ({ ...(run.facets || {})[ACTION_FACET], runId: run.id }))
    .filter((a) => a.action)
    .sort((a, b) => String(a.actionTime).localeCompare(String(b.actionTime)));
  return { actions, total: page.totalCount };
}

/** The aliases on `version` after replaying the alias actions in order. */
function currentAliases(actions, version) {
  const points = new Map();
  for (const a of actions) {
    if (a.action === "alias_set" && a.alias) points.set(a.alias, String(a.version));
    else if (a.action === "alias_deleted" && a.alias) points.delete(a.alias);
  }
  return [...points].filter(([, v]) => v === version).map(([alias]) => alias).sort();
}

function historyTable(actions) {
  const table = el("table", undefined, "history");
  const head = el("tr");
  for (const h of ["when (UTC)", "action", "alias", "version", "previous", "actor", "run"]) head.append(el("th", h));
  table.append(el("thead"));
  table.tHead.append(head);
  const body = el("tbody");
  for (const a of actions) {
    const tr = el("tr");
    tr.dataset.action = a.action;
    const when = String(a.actionTime || "").replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, "");
    const cells = [when, a.action, a.alias, a.version, a.previousVersion, a.actor, a.authorizingRunId];
    for (const c of cells) tr.append(el("td", c === undefined || c === null ? "" : String(c)));
    if (a.authorizingRunId) {  // a run id is long: show its start, the whole id on hover
      tr.lastChild.textContent = String(a.authorizingRunId).slice(0, 8) + "…";
      tr.lastChild.title = a.authorizingRunId;
    }
    body.append(tr);
  }
  table.append(body);
  return table;
}

async function modelDetails(box, node, model, onAliases) {
  const f = model.facet;
  box.append(dl([["kind", "model version"], ["model", model.name], ["version", model.version],
    ["namespace", node.data.namespace], ["aliases at capture", f.aliases], ["artifact digest", f.artifactDigest],
    ["MLflow run", f.runId], ["logged model", f.modelId], ["source", f.source],
    ["tags", tagsOf(node.data)], ["last modified", node.data.lastModifiedAt]]));
  const section = el("section", undefined, "promotions");
  section.append(el("h3", "Promotion history"));
  box.append(section);
  const { actions, total } = await registryActions(node.data.namespace, model.name);
  const aliases = currentAliases(actions, model.version);
  onAliases(aliases);
  section.append(dl([["aliases now", aliases.length ? aliases : "none"]]));
  const mine = actions.filter((a) => String(a.version) === model.version || String(a.previousVersion) === model.version);
  if (!mine.length) section.append(el("p", "No registry action recorded for this version.", "hint"));
  else section.append(historyTable(mine));
  if (total > actions.length) section.append(el("p", `Showing the latest ${actions.length} of ${total} registry actions.`, "hint"));
}

function runBlock(run, label) {
  const wrap = el("div", undefined, "run");
  wrap.dataset.runId = run.id;
  wrap.append(el("h3", label + " " + run.id),
    dl([["state", run.state], ["started", run.startedAt], ["ended", run.endedAt], ["duration ms", run.durationMs]]),
    facetsBlock("Run facets", run.facets));
  return wrap;
}

async function jobDetails(box, node, linkedRun) {
  const d = node.data;
  box.append(dl([["kind", "job"], ["namespace", d.namespace], ["type", d.type], ["location", d.location],
    ["description", d.description], ["version", d.currentVersion], ["tags", tagsOf(d)], ["updated", d.updatedAt]]));
  box.append(facetsBlock("Job facets", d.facets));
  if (linkedRun) box.append(runBlock(await api(`/jobs/runs/${enc(linkedRun)}`), "Linked run"));
  const runs = await api(`/namespaces/${enc(d.namespace)}/jobs/${enc(d.name)}/runs`, { limit: 5 });
  for (const run of runs.runs) if (run.id !== linkedRun) box.append(runBlock(run, "Run"));
}

/** Fill `box` with `node`'s details. `linkedRun`: a run id the link named (Dagster's);
 *  `onAliases(list)`: called with a model version's current aliases once known. */
export async function showDetails(box, id, node, { linkedRun, onAliases }) {
  box.replaceChildren();
  if (!node) return;
  const d = node.data;
  box.append(el("h2", d.name), openHere(id));
  const model = modelOf(node);
  if (node.type === "JOB") await jobDetails(box, node, linkedRun);
  else if (model) await modelDetails(box, node, model, onAliases);
  else box.append(dl([["kind", "dataset"], ["namespace", d.namespace], ["digest", digestOf(node)],
    ["tags", tagsOf(d)], ["source", d.sourceName], ["fields", (d.fields || []).map((f) => f.name + ":" + f.type)],
    ["version", d.currentVersion], ["last modified", d.lastModifiedAt]]));
  if (node.type !== "JOB") box.append(facetsBlock("Dataset facets", d.facets));
}
