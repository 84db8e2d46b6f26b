"""OpenCV, imported in one place so that its absence is one clear line.

reid-trt requires no OpenCV distribution of its own: in a tracker's environment it uses the
`opencv-python` that BoxMOT or Ultralytics brought, and elsewhere the `headless` extra installs
`opencv-python-headless`. Two distributions in one environment share the `cv2` folder, the last
installed wins it, and removing either breaks the other: requiring one would make that the rule
beside every tracker.
"""

from __future__ import annotations

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

__all__ = ["cv2"]
