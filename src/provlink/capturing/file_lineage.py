"""Files read and written inside a capture point become its inputs and outputs.

The core extension that connects :mod:`provlink.capturing.file_capture` (what was touched) to
:mod:`provlink.capturing.datasets` (digest + schema per file). Run-level capture points (a DAG run,
a Dagster run) pass ``capture_files=False``: their steps report the files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from provlink.capturing.file_capture import FileCapture, default_ignores

if TYPE_CHECKING:
    from provlink.capturing.point import CapturePoint

_STATE_KEY = "file_capture"


class FileLineageExtension:
    def on_start(self, point: CapturePoint) -> None:
        if not point.capture_files:
            return
        config = point.runtime.config
        recorder = FileCapture(ignore=default_ignores(config.orchestrator_state, config.home))
        recorder.start()
        point.state[_STATE_KEY] = recorder

    def on_finish(self, point: CapturePoint) -> None:
        recorder: FileCapture | None = point.state.pop(_STATE_KEY, None)
        if recorder is None:
            return
        accesses = recorder.stop()
        scratch = Path(tempfile.gettempdir()).resolve()
        for path in accesses.reads:
            if path.is_relative_to(scratch) and not path.exists():
                continue  # a library's scratch file, gone already: not data
            if ("file", str(path)) not in point.inputs:
                point.add_input(path)
        for path in accesses.writes:
            if ("file", str(path)) not in point.outputs:
                point.add_output(path)


EXTENSION = FileLineageExtension()
