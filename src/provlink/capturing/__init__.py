"""Capture (``provlink.capturing``, since ``provlink.capture`` is the public function).

Capture points, file and library I/O capture, command files, content digests and schemas.

A capture point turns what a task read, wrote and was given into a neutral
:class:`~provlink.events.model.CaptureRecord` and hands it to delivery."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provlink._lazy import lazy_exports

if TYPE_CHECKING:
    from provlink.capturing.datasets import file_dataset as file_dataset
    from provlink.capturing.digest import file_digest as file_digest
    from provlink.capturing.file_capture import capture_files as capture_files
    from provlink.capturing.point import CapturePoint as CapturePoint
    from provlink.capturing.point import add_input as add_input
    from provlink.capturing.point import add_output as add_output
    from provlink.capturing.point import add_parameters as add_parameters
    from provlink.capturing.point import capture as capture
    from provlink.capturing.point import captured as captured
    from provlink.capturing.point import current as current
    from provlink.capturing.point import register_extension as register_extension

_EXPORTS: dict[str, str] = {
    "CapturePoint": "provlink.capturing.point",
    "capture": "provlink.capturing.point",
    "captured": "provlink.capturing.point",
    "current": "provlink.capturing.point",
    "add_input": "provlink.capturing.point",
    "add_output": "provlink.capturing.point",
    "add_parameters": "provlink.capturing.point",
    "register_extension": "provlink.capturing.point",
    "capture_files": "provlink.capturing.file_capture",
    "file_digest": "provlink.capturing.digest",
    "file_dataset": "provlink.capturing.datasets",
}

__getattr__ = lazy_exports("provlink.capturing", globals(), _EXPORTS)

__all__ = [
    "CapturePoint", "add_input", "add_output", "add_parameters", "capture", "capture_files",
    "captured", "current", "file_dataset", "file_digest", "register_extension",
]
