"""OpenCV, imported in one place so that its absence is one clear line.

reid-trt requires no OpenCV distribution of its own: in a tracker's environment it uses the
`opencv-python` that BoxMOT or Ultralytics brought, and elsewhere the `headless` extra installs
`opencv-python-headless`. Two distributions in one environment share the `cv2` folder, the last
installed wins it, and removing either breaks the other: requiring one would make that the rule
beside every tracker.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid_trt.core.errors import MissingDependencyError, ReidTrtError

try:
    import cv2
except ImportError as e:
    reason = " ".join(str(e).split())
    if "libGL" in reason or "libgthread" in reason:  # opencv-python on a machine without a display
        raise ReidTrtError(
            f"OpenCV does not import ({reason}): apt install libgl1 libglib2.0-0, or swap "
            "opencv-python for opencv-python-headless") from None
    raise MissingDependencyError(
        "opencv-python-headless", "headless", "reading and resizing crops",
        " on servers and in containers; beside a tracker, the opencv-python it brought") from None

__all__ = ["cv2", "read_image"]


def _truncated_jpeg(data: bytes) -> bool:
    """A JPEG whose end-of-image marker is missing: cut short in a copy or a download. libjpeg
    decodes it anyway (grey below the cut) and writes 'Premature end of JPEG file' on the
    process's stderr, where no caller can catch or fold it into a message."""
    return data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-4096:]


def read_image(path) -> np.ndarray | None:
    """A BGR image from a file, or None when it is unreadable, not an image or a cut-short JPEG
    (skipped and counted by the callers, as OpenCV's None for an unreadable file is)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if not data or _truncated_jpeg(data):
        return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
