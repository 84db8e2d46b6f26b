"""OpenCV, imported in one place so that its absence is one clear line.

reid-trt requires no OpenCV distribution of its own: in a tracker's environment it uses the
`opencv-python` that BoxMOT or Ultralytics brought, and elsewhere the `headless` extra installs
`opencv-python-headless`. Two distributions in one environment share the `cv2` folder, the last
installed wins it, and removing either breaks the other: requiring one would make that the rule
beside every tracker.
"""

from __future__ import annotations

import struct

import numpy as np

from reid_trt.core.defaults import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from reid_trt.core.errors import MissingDependencyError, ReidTrtError
from reid_trt.core.fileio import read_regular

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

__all__ = ["cv2", "image_size", "read_image"]


def _truncated_jpeg(data: bytes) -> bool:
    """A JPEG whose end-of-image marker is missing: cut short in a copy or a download. libjpeg
    decodes it anyway (grey below the cut) and writes 'Premature end of JPEG file' on the
    process's stderr, where no caller can catch or fold it into a message."""
    return data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-4096:]


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) that a JPEG, PNG, BMP or WebP file declares in its header, read without
    decoding; None for another format or a header cut short."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"BM":
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8 ":
                width, height = struct.unpack("<HH", data[26:30])
                return width & 0x3FFF, height & 0x3FFF
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8X":
                return (int.from_bytes(data[24:27], "little") + 1,
                        int.from_bytes(data[27:30], "little") + 1)
            return None
        if data[:2] == b"\xff\xd8":  # JPEG: the first start-of-frame marker holds the size
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    return None
                marker = data[i + 1]
                if marker == 0xFF:  # fill byte
                    i += 1
                    continue
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    height, width = struct.unpack(">HH", data[i + 5:i + 9])
                    return width, height
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
                    i += 2
                    continue
                i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    except struct.error:
        pass
    return None


def read_image(path) -> np.ndarray | None:
    """A BGR image from a file, or None when it is unreadable, not a regular file, not a JPEG,
    PNG, BMP or WebP image, larger than MAX_IMAGE_BYTES or MAX_IMAGE_PIXELS by its header, or a
    cut-short JPEG (skipped and counted by the callers, as OpenCV's None for an unreadable file
    is)."""
    try:
        data = read_regular(path, MAX_IMAGE_BYTES)
    except (OSError, ValueError):  # unreadable, not a regular file, or too large
        return None
    if not data or _truncated_jpeg(data):
        return None
    size = image_size(data)
    if size is None or size[0] * size[1] > MAX_IMAGE_PIXELS or 0 in size:
        return None
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:  # a header that lied about its size, or other damage
        return None
