"""A progress line on stderr for long governance work, only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Self, TextIO


class Progress:
    """``with Progress("tracing") as bar: bar.update(n)``; silent unless stderr is a TTY."""

    def __init__(self, label: str, *, total: int | None = None,
                 stream: TextIO | None = None) -> None:
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0

    def __enter__(self) -> Self:
        return self

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.1:
            return
        self._last = now
        if self.total:
            filled = int(30 * min(done, self.total) / self.total)
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] "
                              f"{done}/{self.total}")
        else:
            self.stream.write(f"\r{self.label} … {done}")
        self.stream.flush()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
