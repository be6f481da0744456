"""The lineage page in headless Chromium: search, open a node, click to expand, details."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.server.server_events import pipeline
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


@pytest.fixture
def browser() -> Any:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_page_search_expand_and_details(store: Any, browser: Any, tmp_path: Path) -> None:
    store.ingest_many(pipeline())
    with LiveServer(store) as live:
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.goto(live.url + "/")
        page.fill("#search", "raw")
        page.locator("#results li", has_text="/data/raw.csv").click()
        graph = page.locator("#graph")
        page.wait_for_function("() => document.querySelector('#graph').dataset.nodes === '3'")
        assert graph.locator("g.node").count() == 3

        page.locator("g.node[data-node-id='dataset:file:/data/features.parquet']").click()
        page.wait_for_function("() => Number(document.querySelector('#graph').dataset.nodes) > 3")
        assert graph.locator("g.node").count() == 7
        assert graph.locator("path.edge").count() == 7

        page.locator("g.node[data-node-id='dataset:http://127.0.0.1:5001:models/churn/3']").click()
        page.wait_for_selector("#details h2:text('models/churn/3')")
        assert "model version" in page.inner_text("#details")
        page.locator("g.node[data-node-id='job:provlink-tests:train']").click()
        page.wait_for_selector("#details h3:text-matches('^Run ')")
        assert "COMPLETED" in page.inner_text("#details")

        shot = tmp_path / "lineage-page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("PROVLINK_UPDATE_SCREENSHOT"):  # refresh the copy shown in benchmarks/
            shutil.copyfile(shot, DOCS_SCREENSHOT)
        assert all(url.startswith(live.url) for url in requests), "the page must work offline"
        # the page works under its own strict CSP: nothing it does is blocked
        assert not [m for m in console if "Content Security Policy" in m], console
