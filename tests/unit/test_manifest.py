"""``provlink.capturing.manifest``: per-file SHA-256 in sorted path order, and the digest over
them as OpenSSF model-signing's ``files`` serialization computes it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from provlink.capturing.manifest import directory_manifest


def _model(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "model.skops").write_bytes(b"\x00\x01weights")
    (root / "sub" / "conda.yaml").write_text("name: env\n")
    return root


def test_digest_is_sha256_over_sorted_file_digests(tmp_path: Path) -> None:
    root = _model(tmp_path / "model")
    manifest = directory_manifest(root)
    names = ["MLmodel", "model.skops", "sub/conda.yaml"]
    digests = [hashlib.sha256((root / n).read_bytes()).hexdigest() for n in names]
    assert [e.path for e in manifest.entries] == names
    assert [e.digest for e in manifest.entries] == digests
    root_digest = hashlib.sha256(b"".join(bytes.fromhex(d) for d in digests)).hexdigest()
    assert manifest.digest == f"sha256:{root_digest}" and manifest.exact
    assert manifest.subjects()[0] == {"name": "MLmodel", "digest": {"sha256": digests[0]}}
    assert manifest.as_dict()["size"] == sum((root / n).stat().st_size for n in names)


def test_tool_metadata_does_not_change_the_digest(tmp_path: Path) -> None:
    root = _model(tmp_path / "model")
    before = directory_manifest(root).digest
    (root / "registered_model_meta").write_text("model_name: m\nmodel_version: 1\n")
    assert directory_manifest(root).digest == before
    (root / "model.skops").write_bytes(b"\x00\x01other weights")
    assert directory_manifest(root).digest != before


def test_files_above_the_bound_are_fingerprinted(tmp_path: Path) -> None:
    root = _model(tmp_path / "model")
    manifest = directory_manifest(root, max_bytes=5)
    assert not manifest.exact
    assert any("provlinkFingerprintSha256" in s["digest"] for s in manifest.subjects())
