"""One deployment of the known-answer pipelines for the governance suite: real MLflow on
SQLite, real capture points, the real spool and sender, ``provlink serve`` over HTTP."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from provlink.cli.main import main
from provlink.config import ProvlinkConfig
from provlink.delivery.runtime import Runtime, set_runtime
from provlink.governance.keys import LEDGER_KEY, write_key
from provlink.governance.note import Signer
from provlink.server.store import open_store
from provlink.tracking_uri import tracking_namespace
from tests.governance.pipelines import KnownAnswers, run_known_answers
from tests.server.support import LiveServer


@dataclass(frozen=True, slots=True)
class Deployment:
    answers: KnownAnswers
    url: str
    tracking_uri: str
    home: Path
    ledger_vkey: str  # the public half of the ledger key in ``home``

    @property
    def model_namespace(self) -> str:
        return tracking_namespace(self.tracking_uri)

    def cli(self, *args: str) -> tuple[int, str]:
        """Run ``provlink ARGS --url … --tracking-uri …`` in-process: (exit code, stdout)."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.MonkeyPatch.context() as mp:
            mp.setenv("PROVLINK_HOME", str(self.home))
            mp.setenv("MLFLOW_TRACKING_URI", self.tracking_uri)
            code = main([*args, "--url", self.url])
        return code, out.getvalue()


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("governance")
    home = root / "home"
    uri = f"sqlite:///{root / 'mlflow.db'}"
    signer = Signer.generate("kat-ledger")
    store = open_store(f"sqlite:///{home / 'lineage.db'}")
    with LiveServer(store) as server:
        # the environment only while the pipelines run: a session fixture's variables would
        # otherwise stay set for every later test (the Dagster examples then found this
        # MLflow tracking URI instead of their own)
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(root)
            mp.setenv("MLFLOW_TRACKING_URI", uri)
            mp.setenv("PROVLINK_HOME", str(home))
            for name in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE_DISABLED"):
                mp.delenv(name, raising=False)
            write_key(home / LEDGER_KEY, signer)  # as `provlink keys generate` does
            runtime = Runtime(ProvlinkConfig.load(lineage_url=server.url))
            old = set_runtime(runtime)
            try:
                answers = run_known_answers(root / "work")
                assert runtime.flush(60), "the sender did not deliver every event"
            finally:
                runtime.close()
                set_runtime(old)
                while mlflow.active_run() is not None:
                    mlflow.end_run()
            assert runtime.capture_failures == 0
        yield Deployment(answers=answers, url=server.url, tracking_uri=uri, home=home,
                         ledger_vkey=signer.verifier().vkey)
    store.close()
