"""Bad input cannot break the backend: one test per hardening rule of ``provlink serve``
(cross-site writes, Host names, nesting, non-finite numbers, body size, list limits,
parameter length, linear column lineage, page security headers)."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from provlink.server import queries
from provlink.server.routing import MAX_BODY
from provlink.server.tx import Tx
from provlink.server.validation import MAX_DEPTH
from tests.server.server_events import dataset, facet, pipeline, run_event
from tests.server.support import LiveServer

JSON = {"Content-Type": "application/json"}


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"x": value}
    return value


def test_cross_site_and_non_json_writes_are_refused(server: LiveServer, store: Any) -> None:
    url = server.url + "/api/v1/lineage"
    body = json.dumps(run_event("csrf"))
    # what a form or a no-cors fetch from any web page can send without a preflight
    plain = httpx.post(url, content=body, headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415 and "application/json" in plain.json()["message"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert httpx.post(url, content=body, headers=form).status_code == 415
    assert httpx.post(url, content=body).status_code == 415  # a body without a Content-Type
    evil = {**JSON, "Origin": "https://evil.example"}
    assert httpx.post(url, content=body, headers=evil).status_code == 403
    fetch_meta = {**JSON, "Sec-Fetch-Site": "cross-site"}
    assert httpx.post(url, content=body, headers=fetch_meta).status_code == 403
    assert httpx.put(server.url + "/api/v1/tags/X", content="{}", headers=evil).status_code == 403
    assert store.counts()["events"] == 0

    own_page = {**JSON, "Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    assert httpx.post(url, content=body, headers=own_page).status_code == 201
    assert httpx.post(url, content=body, headers=JSON).status_code == 201
    # Marquez's Python client tags with a bodyless POST and no Content-Type: still allowed
    tag = f"{server.url}/api/v1/namespaces/provlink-tests/jobs/csrf/tags/T"
    assert httpx.post(tag).status_code == 200
    assert httpx.post(tag, headers={"Origin": "null"}).status_code == 403
    assert httpx.get(server.url + "/api/v1/namespaces", headers=evil).status_code == 200


def test_api_keys_lift_the_cross_site_rules(store: Any) -> None:
    with LiveServer(store, api_keys=["writer-key-123"]) as live:
        headers = {"Authorization": "Bearer writer-key-123", "Content-Type": "text/plain"}
        response = httpx.post(
            live.url + "/api/v1/lineage", content=json.dumps(run_event("k")), headers=headers
        )
        assert response.status_code == 201
        # with keys, any Host is served unless names are configured
        assert httpx.get(live.url + "/", headers={"Host": "lineage.example"}).status_code == 200


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_host_must_be_loopback_or_configured(store: Any) -> None:
    with LiveServer(store, allowed_hosts=("lineage.corp", ".internal.example")) as live:
        api = live.url + "/api/v1/namespaces"
        for host in ("localhost", f"localhost:{live.port}", "127.0.0.1", "[::1]:80",
                     "lineage.corp", "a.internal.example"):
            assert httpx.get(api, headers={"Host": host}).status_code == 200, host
        for host in ("rebind.attacker.example", "lineage.corp.evil", "127.0.0.1.nip.io", "[::1"):
            refused = httpx.get(api, headers={"Host": host})
            assert refused.status_code == 400, host
            assert "--allowed-host" in refused.json()["message"]
        assert httpx.get(live.url + "/", headers={"Host": "evil.example"}).status_code == 400
        write = httpx.post(live.url + "/api/v1/lineage", content=json.dumps(run_event("h")),
                           headers={**JSON, "Host": "evil.example"})
        assert write.status_code == 400
    assert store.counts()["events"] == 0


def test_deep_nesting_is_refused_naming_the_path_and_reads_stay_up(
    server: LiveServer, store: Any
) -> None:
    # the JSON text is built by hand: Python's own encoder cannot nest 970 levels
    deep = json.dumps(run_event("deep", run_facets={"custom": facet(value="DEEP")})).replace(
        '"DEEP"', '{"x":' * 970 + "1" + "}" * 970
    )
    response = httpx.post(server.url + "/api/v1/lineage", content=deep, headers=JSON)
    assert response.status_code == 422
    field = response.json()["field"]
    assert field.startswith("run.facets.custom.value.x.x") and "deeper than" in (
        response.json()["message"]
    )
    within = run_event("ok", run_facets={"custom": facet(value=_nested(MAX_DEPTH - 8))})
    assert httpx.post(
        server.url + "/api/v1/lineage", content=json.dumps(within), headers=JSON
    ).status_code == 201
    batch = httpx.post(
        server.url + "/api/v1/lineage/batch",
        content=f"[{deep}, {json.dumps(within)}]",
        headers=JSON,
    ).json()
    assert batch["errors"][0]["index"] == 0 and batch["errors"][0]["field"] == field
    run_id = within["run"]["runId"]
    for path in ("events/lineage", f"jobs/runs/{run_id}", f"jobs/runs/{run_id}/facets",
                 "namespaces/provlink-tests/jobs/ok/runs"):
        assert httpx.get(f"{server.url}/api/v1/{path}").status_code == 200, path
    assert store.counts()["events"] == 1


def test_non_finite_numbers_are_refused(server: LiveServer, store: Any) -> None:
    event = json.dumps(run_event("numbers", run_facets={"stats": facet(rows=12345)}))
    for literal, raw in (("1e999", "1e999"), ("-1e999", "-1e999"), ("NaN", "NaN"),
                         ("Infinity", "Infinity")):
        body = event.replace("12345", raw)
        response = httpx.post(server.url + "/api/v1/lineage", content=body, headers=JSON)
        assert response.status_code == 422, literal
        assert response.json()["field"] == "run.facets.stats.rows"
        assert "finite" in response.json()["message"]
    ok = httpx.post(server.url + "/api/v1/lineage", content=event.replace("12345", "1e300"),
                    headers=JSON)
    assert ok.status_code == 201
    served = httpx.get(server.url + "/api/v1/events/lineage").text
    json.loads(served, parse_constant=lambda name: pytest.fail(f"served {name}"))
    assert store.counts()["events"] == 1


def _raw_request(port: int, head: str, body: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        return sock.recv(4096)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/lineage"), ("POST", "/api/v1/lineage/batch"), ("PUT", "/api/v1/tags/T")],
)
def test_body_size_is_checked_before_buffering(
    server: LiveServer, store: Any, method: str, path: str
) -> None:
    """The answer comes while the announced body has not been sent: nothing was buffered."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY * 4}"
    )
    answer = _raw_request(server.port, head, b'{"description": "')
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    chunked = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked"
    )
    chunk = b"a" * (1 << 20)
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(chunked.encode() + b"\r\n\r\n")
        answer = b""
        try:
            for _ in range(MAX_BODY // len(chunk) + 2):
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert store.tags(10, 0)["tags"] == []


def test_every_list_endpoint_clamps_limit(
    server: LiveServer, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = pipeline()
    for index in range(3):
        events.append(run_event("again", outputs=[dataset("file", "/again")], minutes=30 + index))
    store.ingest_many(events)
    for tag in ("A", "B", "C"):
        store.put_tag(tag, None)
    monkeypatch.setattr(queries, "MAX_LIMIT", 2)
    lists = {
        "namespaces": "namespaces",
        "namespaces/file/datasets": "datasets",
        "namespaces/file/datasets/%2Fagain/versions": "versions",
        "namespaces/provlink-tests/jobs": "jobs",
        "jobs": "jobs",
        "namespaces/provlink-tests/jobs/again/runs": "runs",
        "events/lineage": "events",
        "tags": "tags",
        "search?q=a": "results",
    }
    for path, key in lists.items():
        sep = "&" if "?" in path else "?"
        answer = httpx.get(f"{server.url}/api/v1/{path}{sep}limit=1000000")
        assert answer.status_code == 200, (path, answer.text)
        assert len(answer.json()[key]) == 2, path


def test_over_long_query_and_node_id_answer_400(server: LiveServer) -> None:
    store_event = run_event("job", outputs=[dataset("f", "out")])
    httpx.post(server.url + "/api/v1/lineage", content=json.dumps(store_event), headers=JSON)
    api = server.url + "/api/v1"
    long_q = httpx.get(f"{api}/search", params={"q": "a" * 60_000})
    assert long_q.status_code == 400 and "'q'" in long_q.json()["message"]
    assert httpx.get(f"{api}/search", params={"q": "o" * 4096}).status_code == 200
    node = "dataset:f:" + "x" * 20_000
    for path in ("lineage", "column-lineage"):
        assert httpx.get(f"{api}/{path}", params={"nodeId": node}).status_code == 400
    assert httpx.get(f"{api}/events/lineage", params={"after": "2" * 20_000}).status_code == 400


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_column_lineage_statements_do_not_grow_with_fields(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Column lineage does a bounded number of queries per dataset, whatever the field count
    (the old walk ran one query per field and rescanned every link per node)."""
    for name, width in (("narrow", 30), ("wide", 900)):
        source = {"namespace": "f", "name": f"{name}_in"}
        lineage = facet(
            fields={f"o{i}": {"inputFields": [{**source, "field": f"c{i}"}]} for i in range(width)}
        )
        store.ingest(
            run_event(
                name,
                inputs=[dataset("f", f"{name}_in", [f"c{i}" for i in range(width)])],
                outputs=[
                    dataset("f", f"{name}_out", [f"o{i}" for i in range(width)],
                            columnLineage=lineage)
                ],
            )
        )
    calls = {"n": 0}
    original = Tx.rows, Tx.row

    def counted(index: int) -> Any:
        def call(self: Tx, *args: Any) -> Any:
            calls["n"] += 1
            return original[index](self, *args)

        return call

    monkeypatch.setattr(Tx, "rows", counted(0))
    monkeypatch.setattr(Tx, "row", counted(1))
    statements = {}
    for name, width in (("narrow", 30), ("wide", 900)):
        calls["n"] = 0
        graph = store.column_lineage(f"dataset:f:{name}_out", 20, True)["graph"]
        assert len(graph) == 2 * width
        assert sum(len(n["inEdges"]) for n in graph) == width
        statements[name] = calls["n"]
    assert statements["wide"] == statements["narrow"], statements


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_page_and_api_send_security_headers(server: LiveServer) -> None:
    for path in ("/", "/static/app.js", "/api/v1/namespaces", "/api/v1/nothing"):
        headers = httpx.get(server.url + path).headers
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        assert "script-src 'self'" in policy
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
