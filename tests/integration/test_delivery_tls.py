"""The sender honours the HTTP transport's TLS and compression settings on both paths (batch
and one POST per event): a real HTTPS server that requires a client certificate from our
own CA and records the encoding of what it receives."""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime
from tests.integration.test_delivery_poison import event, isolate


def issue(name: str, issuer: tuple[x509.Certificate, Any] | None, *, ca: bool = False,
          ip: str | None = None) -> tuple[x509.Certificate, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer[0].subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def write(directory: Path, name: str, cert: x509.Certificate, key: Any) -> tuple[str, str]:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class MutualTlsEndpoint:
    """HTTPS, client certificate required; ``batch`` is "provlink" (answers like
    ``provlink serve``'s batch endpoint) or "absent" (404, as Marquez)."""

    def __init__(self, directory: Path, batch: str) -> None:
        ca = issue("provlink-test-ca", None, ca=True)
        self.ca_path, _ = write(directory, "ca", *ca)
        server_files = write(directory, "server", *issue("127.0.0.1", ca, ip="127.0.0.1"))
        self.client_files = write(directory, "client", *issue("provlink-client", ca))
        self.events: list[dict[str, Any]] = []
        self.encodings: set[str] = set()
        self.clients: set[str] = set()
        self.batches = 0
        lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # http.server naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "identity")
                body = gzip.decompress(raw) if encoding == "gzip" else raw
                peer = self.connection.getpeercert()  # type: ignore[attr-defined]
                subject = dict(item[0] for item in peer["subject"])["commonName"]
                if self.path.endswith("/batch") and batch == "absent":
                    self.reply(404, b"")
                    return
                received = json.loads(body)
                events = received if self.path.endswith("/batch") else [received]
                with lock:
                    endpoint.encodings.add(encoding)
                    endpoint.clients.add(subject)
                    endpoint.events.extend(events)
                    endpoint.batches += self.path.endswith("/batch")
                if self.path.endswith("/batch"):
                    self.reply(200, json.dumps({"received": len(events), "stored": len(events),
                                                "duplicates": 0, "errors": []}).encode())
                else:
                    self.reply(201, b"")

            def reply(self, status: int, message: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)

            def log_message(self, *args: Any) -> None:
                pass

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=self.ca_path)
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_cert_chain(*server_files)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("batch", ["provlink", "absent"])
@pytest.mark.parametrize("client", ["pool", "requests"])
def test_tls_client_certificate_and_gzip_on_both_paths(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       batch: str, client: str) -> None:
    """``client``: provlink's connection pool, or requests (taken when the user set a
    urllib3 retry policy, which only requests applies)."""
    isolate(tmp_path, monkeypatch)
    endpoint = MutualTlsEndpoint(tmp_path, batch)
    retry = {"retry": {"total": 1}} if client == "requests" else {}
    (tmp_path / "openlineage.yml").write_text(json.dumps({"transport": {
        **retry, "type": "http", "url": endpoint.url, "compression": "gzip",
        "sslContext": {"caCertPath": endpoint.ca_path,
                       "clientCertPath": endpoint.client_files[0],
                       "clientKeyPath": endpoint.client_files[1]}}}))
    events = [event(f"tls_{i % 3}", i % 3, ("START", "COMPLETE")[i // 3]) for i in range(6)]
    runtime = Runtime(ProvlinkConfig.load())
    set_runtime(runtime)
    try:
        for e in events:
            runtime.emitter.spool.append(e)
        assert runtime.flush(30.0), list(runtime.emitter.spool.entries())
    finally:
        runtime.close(2.0)
        set_runtime(None)
        endpoint.stop()
    assert sorted(json.dumps(e, sort_keys=True) for e in endpoint.events) == sorted(
        json.dumps(e, sort_keys=True) for e in events)
    assert endpoint.encodings == {"gzip"}
    assert endpoint.clients == {"provlink-client"}
    assert (endpoint.batches > 0) == (batch == "provlink")


def test_without_the_client_certificate_events_wait_instead_of_dying(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(tmp_path, monkeypatch)
    endpoint = MutualTlsEndpoint(tmp_path, "absent")
    (tmp_path / "openlineage.yml").write_text(json.dumps({"transport": {
        "type": "http", "url": endpoint.url, "sslContext": {"caCertPath": endpoint.ca_path}}}))
    runtime = Runtime(ProvlinkConfig.load())
    set_runtime(runtime)
    try:
        runtime.emitter.spool.append(event("tls", 1))
        runtime.emitter.spool.append(event("tls", 1, "COMPLETE"))
        assert runtime.flush(10.0) is False
        status = runtime.emitter.spool.status()
        assert (status.pending, status.dead) == (2, 0)  # a TLS refusal is not the event's fault
    finally:
        runtime.close(1.0)
        set_runtime(None)
        endpoint.stop()
    assert endpoint.events == []
