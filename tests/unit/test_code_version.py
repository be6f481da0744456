"""The code version of a capture point: git's remote spellings become the URIs OpenLineage's
``sourceCodeLocation`` asks for, whatever remote the checkout has (CI clones from a bare
repository on disk, whose remote is a plain path)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provlink.capturing.environment import git_code_version, remote_uri
from provlink.events.build import to_event
from provlink.events.model import CaptureRecord, EventType, JobRef
from tests.conformance import require_spec, validate_event


@pytest.mark.parametrize(("remote", "uri"), [
    ("https://github.com/o/r.git", "https://github.com/o/r.git"),
    ("ssh://git@host:2222/o/r.git", "ssh://git@host:2222/o/r.git"),
    ("git@github.com:o/r.git", "ssh://git@github.com/o/r.git"),
    ("github.com:o/r.git", "ssh://github.com/o/r.git"),
    ("/srv/git/repo.git", "file:///srv/git/repo.git"),
    ("../repo.git", "file:///work/repo.git"),
    ("./with space.git", "file:///work/top/with%20space.git"),
])
def test_remote_spellings_become_uris(remote: str, uri: str) -> None:
    assert remote_uri(remote, Path("/work/top")) == uri


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=cwd,
                   check=True, capture_output=True)


def test_a_clone_of_a_bare_repository_on_disk_emits_a_valid_code_location(
        tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    _git(origin, "init", "-q")
    (origin / "dag.py").write_text("x = 1\n")
    _git(origin, "add", "dag.py")
    _git(origin, "commit", "-q", "-m", "one")
    _git(tmp_path, "clone", "-q", "--bare", str(origin), "repo.git")
    _git(tmp_path, "clone", "-q", str(tmp_path / "repo.git"), "clone")
    code = git_code_version(tmp_path / "clone" / "dag.py")
    assert code is not None
    assert code.repo_url == (tmp_path / "repo.git").resolve().as_uri()

    record = CaptureRecord(job=JobRef(namespace="default", name="j"),
                           run_id="01937a4e-0000-7000-8000-000000000001",
                           event_type=EventType.COMPLETE, event_time=datetime.now(UTC), code=code)
    event = to_event(record)
    location = event["job"]["facets"]["sourceCodeLocation"]
    assert location["url"] == (tmp_path / "clone" / "dag.py").resolve().as_uri()
    assert location["repoUrl"] == code.repo_url
    assert location["version"] == code.commit
    require_spec()
    validate_event(event)
