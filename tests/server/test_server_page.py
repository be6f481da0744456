"""The lineage page in headless Chromium: a model version's whole chain in one view, its
aliases and promotion history, a dataset's digest; search and details."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from urllib.request import Request, urlopen

import pytest

from provlink.governance.registry_event import to_event
from provlink.governance.registry_log import RegistryAction
from provlink.mlflow.registry import lineage_link
from tests.server.server_events import BASE_TIME, dataset, facet, pipeline, run_event
from tests.server.support import LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "benchmarks" / "lineage-page.png"
NS, MODELS = "provlink-tests", "http://127.0.0.1:5001"
ORDERS_DIGEST = "sha256:" + "0a" * 32
JOINED_DIGEST = "sha256:" + "1b" * 32
MODEL_DIGEST = "sha256:" + "2c" * 32


@pytest.fixture
def browser() -> Any:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def _digest(value: str) -> dict[str, Any]:
    return {"version": facet(datasetVersion=value)}


def _model(version: str, train_run: str) -> dict[str, Any]:
    model_facet = facet(
        name="churn",
        version=version,
        trackingUri=MODELS,
        runId=uuid.uuid4().hex,
        source="models:/m-1",
        aliases=[],
        artifactDigest=MODEL_DIGEST,
    )
    return dataset(
        MODELS, f"models/churn/{version}", mlflow_model_version=model_facet, **_digest(version)
    )


def _registry(action: str, minutes: int, **fields: Any) -> dict[str, Any]:
    at = int((BASE_TIME.timestamp() + minutes * 60) * 1000)
    return to_event(
        RegistryAction(
            action=action,
            model="churn",
            source="in-process",
            time_ms=at,
            tracking_uri=MODELS,
            **fields,
        )
    )


def model_chain() -> tuple[list[dict[str, Any]], str]:
    """extract -> orders.csv + customers.csv -> clean -> joined -> featurize -> features ->
    train -> models/churn/3 -> score -> predictions -> report, plus a side branch (eda), an
    older version 2 and the registry actions; returns the events and train's run id."""
    train_run = str(uuid.uuid4())
    orders = dataset("file", "/raw/orders.csv", **_digest(ORDERS_DIGEST))
    customers = dataset("file", "/raw/customers.csv")
    pii = facet(tags=[{"key": "pii", "value": "none", "source": "provlink-tests"}])
    joined = dataset(
        "file", "/clean/joined.parquet", ["id", "amount"], tags=pii, **_digest(JOINED_DIGEST)
    )
    features = dataset("file", "/features/churn.parquet", ["f1", "f2"])
    predictions = dataset("file", "/scores/churn.parquet", ["p"])
    steps = [
        ("extract_orders", [], [orders], None),
        ("clean", [orders, customers], [joined], None),
        ("featurize", [joined], [features], None),
        ("eda", [features], [dataset("file", "/reports/eda.html")], None),
        ("train_v2", [features], [_model("2", train_run)], None),
        ("train", [features], [_model("3", train_run)], train_run),
        ("score", [_model("3", train_run), features], [predictions], None),
        ("report", [predictions], [dataset("file", "/reports/churn.html")], None),
    ]
    events = [
        run_event(job, namespace=NS, inputs=ins, outputs=outs, run_id=run_id, minutes=i * 10)
        for i, (job, ins, outs, run_id) in enumerate(steps)
    ]
    events += [
        _registry("version_created", 41, version="2", actor="alice"),
        _registry("alias_set", 42, version="2", alias="champion", actor="alice"),
        _registry("version_created", 51, version="3", actor="alice", run_id=train_run),
        _registry(
            "alias_set",
            55,
            version="3",
            alias="champion",
            previous="2",
            actor="bob",
            run_id=train_run,
        ),
        _registry("alias_set", 56, version="3", alias="challenger", actor="bob"),
        _registry("alias_deleted", 57, alias="challenger", previous="3", actor="bob"),
    ]
    return events, train_run


def golden_events(name: str) -> list[dict[str, Any]]:
    """The events a real run of the example pipeline sent (tests/integration/golden), with
    their placeholders filled back in: one time per event, ids, digests, paths."""
    events = []
    path = Path(__file__).resolve().parents[1] / "integration" / "golden" / f"{name}.json"
    for index, event in enumerate(json.loads(path.read_text())):
        text = json.dumps(event).replace("<tmp>", "/tmp/golden").replace('"<size>"', "1")
        text = text.replace(
            '"<time>"', json.dumps((BASE_TIME + timedelta(minutes=index)).isoformat())
        )
        text = re.sub(r"<uuid-(\d+)>", lambda m: str(uuid.UUID(int=int(m.group(1)))), text)
        text = re.sub(r"<hex-(\d+)>", lambda m: m.group(1).rjust(32, "0"), text)
        text = re.sub(r"<([a-z0-9-]+)>", r"x-\1", text)
        events.append(json.loads(text))
    return events


SKLEARN_WINE = "dataset:file:x-site-packages/sklearn/datasets/data/wine_data.csv"
GOLDEN_CHAINS = {
    "airflow_ml_pipeline": (
        "sqlite:///x-work/demo/mlflow.db",
        {
            SKLEARN_WINE,  # the raw_data task reads scikit-learn's bundled copy
            "dataset:file:x-work/demo/raw/wine.csv",
            "job:default:ml_pipeline.raw_data",
            "job:default:ml_pipeline.features",
            "dataset:file:x-work/demo/features/wine_features.parquet",
            "job:default:ml_pipeline.train",
            "job:default:ml_pipeline.score",
            "dataset:file:x-work/demo/predictions/wine_predictions.parquet",
        },
    ),
    "dagster_ml_pipeline": (
        "sqlite:////tmp/golden/home/provlink-demo/mlflow.db",
        {
            SKLEARN_WINE,
            "dataset:file:/tmp/golden/home/provlink-demo/raw/wine.csv",
            "job:default:raw_wine",
            "job:default:wine_features",
            "dataset:file:/tmp/golden/home/provlink-demo/features/wine_features.parquet",
            "job:default:wine_model",
            "job:default:wine_predictions",
            "dataset:file:/tmp/golden/home/provlink-demo/predictions/wine_predictions.parquet",
        },
    ),
}


def _drawn(page: Any) -> set[str]:
    return set(page.eval_on_selector_all("g.node", "gs => gs.map(g => g.dataset.nodeId)"))


def _watch(page: Any) -> tuple[list[str], list[str]]:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    return requests, console


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_page_shows_a_model_versions_whole_chain(store: Any, browser: Any, tmp_path: Path) -> None:
    events, train_run = model_chain()
    store.ingest_many(events)
    model = f"dataset:{MODELS}:models/churn/3"
    with LiveServer(store) as live:
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        requests, console = _watch(page)
        # the link provlink writes into the version's MLflow tags opens the page on it
        page.goto(lineage_link(live.url, MODELS, "models/churn/3"))
        page.wait_for_selector(f"g.node.start[data-node-id='{model}']")
        page.wait_for_selector("#details .promotions table.history")
        # the whole upstream chain to the raw data, one hop downstream, in the one view
        assert _drawn(page) == {
            "dataset:file:/raw/orders.csv",
            "dataset:file:/raw/customers.csv",
            f"job:{NS}:extract_orders",
            f"job:{NS}:clean",
            "dataset:file:/clean/joined.parquet",
            f"job:{NS}:featurize",
            "dataset:file:/features/churn.parquet",
            f"job:{NS}:train",
            f"job:{MODELS}:mlflow_registry.churn",
            model,
            f"job:{NS}:score",
            "dataset:file:/scores/churn.parquet",
        }
        assert page.locator("path.edge").count() == 12
        # laid out left to right: every edge runs from a column to one further right
        xs = page.eval_on_selector_all(
            "g.node",
            "gs => Object.fromEntries(gs.map(g => [g.dataset.nodeId,"
            " g.transform.baseVal[0].matrix.e]))",
        )
        assert xs["dataset:file:/raw/orders.csv"] < xs[f"job:{NS}:clean"] < xs[model]
        assert xs[model] < xs[f"job:{NS}:score"] < xs["dataset:file:/scores/churn.parquet"]

        assert page.inner_text("#status") == ""
        details = page.locator("#details")
        assert details.locator("dd[data-key='aliases now']").inner_text() == "champion"
        assert details.locator("dd[data-key='artifact digest']").inner_text() == MODEL_DIGEST
        rows = details.locator("table.history tbody tr")
        assert [rows.nth(i).get_attribute("data-action") for i in range(rows.count())] == [
            "version_created",
            "alias_set",
            "alias_set",
            "alias_deleted",
        ]
        promotion = rows.nth(1).inner_text().split("\t")
        assert promotion[1:6] == ["alias_set", "champion", "3", "2", "bob"]
        assert rows.nth(1).locator("td").nth(6).get_attribute("title") == train_run
        label = page.locator(f"g.node[data-node-id='{model}'] text.info").text_content()
        assert label == "v3 · @champion"

        shot = tmp_path / "lineage-page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("PROVLINK_UPDATE_SCREENSHOT"):  # refresh the copy shown in benchmarks/
            shutil.copyfile(shot, DOCS_SCREENSHOT)

        tagged = Request(
            f"{live.url}/api/v1/namespaces/file/datasets/{quote('/clean/joined.parquet', safe='')}"
            "/tags/gold",
            method="POST",
        )
        urlopen(tagged, timeout=10).close()  # a Marquez tag, added after the page was drawn
        page.reload()
        page.wait_for_selector("#details .promotions table.history")
        page.locator("g.node[data-node-id='dataset:file:/clean/joined.parquet']").click()
        page.wait_for_selector("#details h2:text('/clean/joined.parquet')")
        assert details.locator("dd[data-key='digest']").inner_text() == JOINED_DIGEST
        assert details.locator("dd[data-key='tags']").inner_text() == "gold, pii=none"
        assert _drawn(page) and len(_drawn(page)) == 12, "a click selects; the view stays"

        assert all(url.startswith(live.url) for url in requests), "the page must work offline"
        assert not [m for m in console if "Content Security Policy" in m], console


@pytest.mark.parametrize("golden", sorted(GOLDEN_CHAINS))
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_page_on_the_example_pipelines_events(store: Any, browser: Any, golden: str) -> None:
    """What the Airflow and Dagster adapters really send: the model version's chain, its
    alias and its registry actions."""
    events = golden_events(golden)
    store.ingest_many(events)
    versions = {  # what each dataset's `version` facet said last
        f"dataset:{d['namespace']}:{d['name']}": d["facets"]["version"]["datasetVersion"]
        for event in events
        for d in event["inputs"] + event["outputs"]
        if "version" in d.get("facets", {})
    }
    models, chain = GOLDEN_CHAINS[golden]
    model = f"dataset:{models}:models/wine_classifier/1"
    with LiveServer(store) as live:
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(lineage_link(live.url, models, "models/wine_classifier/1"))
        page.wait_for_selector("#details .promotions table.history")
        assert _drawn(page) == {*chain, model, f"job:{models}:mlflow_registry.wine_classifier"}
        details = page.locator("#details")
        assert details.locator("dd[data-key='aliases now']").inner_text() == "champion"
        rows = details.locator("table.history tbody tr")
        actions = [rows.nth(i).get_attribute("data-action") for i in range(rows.count())]
        assert actions == ["version_created", "alias_set"]
        raw = next(id for id in chain if id.endswith("raw/wine.csv"))
        page.locator(f"g.node[data-node-id='{raw}']").click()
        page.wait_for_selector("#details dd[data-key='kind']:text('dataset')")
        assert details.locator("dd[data-key='digest']").inner_text() == versions[raw]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_page_opens_a_job_from_a_dagster_link(store: Any, browser: Any) -> None:
    from provlink_dagster.steps import lineage_link as dagster_link

    events, train_run = model_chain()
    store.ingest_many(events)
    with LiveServer(store) as live:
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        # the link provlink_dagster writes into each materialization's metadata
        page.goto(dagster_link(live.url, NS, "train", train_run))
        linked = f"#details .run[data-run-id='{train_run}'] h3:text-matches('^Linked run')"
        page.wait_for_selector(linked)
        assert "dataset:file:/raw/orders.csv" in _drawn(page)
        assert f"dataset:{MODELS}:models/churn/3" in _drawn(page)
        assert f"job:{NS}:score" not in _drawn(page), "a job's downstream is its outputs only"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_page_says_where_a_long_chain_was_cut(store: Any, browser: Any) -> None:
    """23 jobs in a row: the walk (depth 20) reaches 21 of them from the last dataset."""
    events = [
        run_event(
            f"step{i}",
            namespace=NS,
            inputs=[dataset("file", f"/d{i - 1}")] if i else [],
            outputs=[dataset("file", f"/d{i}")],
            minutes=i,
        )
        for i in range(23)
    ]
    store.ingest_many(events)
    with LiveServer(store) as live:
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        page.goto(f"{live.url}/?nodeId=dataset:file:/d22")
        page.wait_for_selector("g.node.start[data-node-id='dataset:file:/d22']")
        drawn = _drawn(page)
        assert {f"job:{NS}:step2", "dataset:file:/d1"} <= drawn
        assert f"job:{NS}:step1" not in drawn
        assert len(drawn) == 21 + 22  # step2..step22, d1..d22
        assert "stops 21 job hops upstream" in page.inner_text("#status")
        # far wider than the canvas: scrolled so that the opened node is in view
        canvas = page.locator("#canvas").bounding_box()
        start = page.locator("g.node.start").bounding_box()
        assert canvas and start and canvas["x"] <= start["x"] < canvas["x"] + canvas["width"]
        scrolled = page.eval_on_selector("#canvas", "c => c.scrollLeft")
        assert scrolled > 0
        page.eval_on_selector("#canvas", "c => { c.scrollLeft -= 100; }")
        page.locator(f"g.node[data-node-id='job:{NS}:step19']").click()
        page.wait_for_selector("#details h2:text('step19')")
        after = page.eval_on_selector("#canvas", "c => c.scrollLeft")
        assert after < scrolled - 90, "a click keeps the reader's scroll, not the opened node's"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_page_search_open_and_details(store: Any, browser: Any) -> None:
    store.ingest_many(pipeline())
    with LiveServer(store) as live:
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        requests, console = _watch(page)
        page.goto(live.url + "/")
        page.fill("#search", "raw")
        page.locator("#results li", has_text="/data/raw.csv").click()
        page.wait_for_function("() => document.querySelector('#graph').dataset.nodes === '3'")
        assert "nodeId=dataset%3Afile%3A%2Fdata%2Fraw.csv" in page.url

        page.locator("g.node[data-node-id='dataset:file:/data/features.parquet']").click()
        page.locator("#details a.open-here").click()
        page.wait_for_function("() => document.querySelector('#graph').dataset.nodes === '7'")
        assert page.locator("#graph path.edge").count() == 7

        page.locator("g.node[data-node-id='dataset:http://127.0.0.1:5001:models/churn/3']").click()
        page.wait_for_selector("#details h2:text('models/churn/3')")
        assert "model version" in page.inner_text("#details")
        assert "No registry action recorded" in page.inner_text("#details")
        page.locator("g.node[data-node-id='job:provlink-tests:train']").click()
        page.wait_for_selector("#details h3:text-matches('^Run ')")
        assert "COMPLETED" in page.inner_text("#details")
        assert all(url.startswith(live.url) for url in requests), "the page must work offline"
        assert not [m for m in console if "Content Security Policy" in m], console
