"""provlink's own threads (the sender, the probe): what they read or write is never lineage.

A module of its own so that delivery and capture can both use the marker without delivery
importing capture.
"""

from __future__ import annotations

import threading

own = threading.local()


def ignore_this_thread() -> None:
    """Mark the calling thread as provlink's own: file capture ignores its I/O."""
    own.ignored = True


def is_own_thread() -> bool:
    return getattr(own, "ignored", False)
