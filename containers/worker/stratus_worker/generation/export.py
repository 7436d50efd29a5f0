"""Outputs as files: PNG for images, MP4 (H.264, yuv420p, +faststart) for videos, byte-for-byte
reproducible (no timestamps, one encoder thread)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any


def png_bytes(image: Any) -> bytes:
    """A PIL image as PNG (Pillow writes no time chunk: the same pixels give the same bytes)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def to_uint8_frames(frames: Any) -> Any:
    """(F, H, W, 3) floats in [0, 1] (diffusers' `output_type="np"`) -> uint8 numpy frames."""
    import numpy as np

    array = np.asarray(frames)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return array


def write_mp4(frames: Any, fps: int, path: Path) -> None:
    """Encode (F, H, W, 3) uint8 frames as H.264 in an MP4 container with PyAV (its wheel carries
    libx264). Width and height are even (multiples of 8), as yuv420p needs."""
    import av

    array = to_uint8_frames(frames)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = int(array.shape[2])
        stream.height = int(array.shape[1])
        stream.pix_fmt = "yuv420p"
        # Deterministic output: one thread, fixed quality; no creation time in the container.
        stream.codec_context.thread_count = 1
        stream.options = {"crf": "18", "preset": "medium", "threads": "1"}
        container.metadata.clear()
        for frame in array:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
