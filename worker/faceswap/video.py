"""H.264 MP4 encoding in memory with the ffmpeg binary that ``imageio-ffmpeg`` ships.

Frames go to ffmpeg's stdin as raw RGB; the MP4 never touches the disk. On Linux ffmpeg writes
into an anonymous in-memory file (``memfd_create``), which is seekable, so the MP4 is a normal
one with its index first (``+faststart``, plays while downloading). Elsewhere it writes to a
pipe as a fragmented MP4 (``frag_keyframe+empty_moov``), which needs no seeking.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterable
from typing import IO

import imageio_ffmpeg
import numpy as np

#: x264 quality (lower is better) and a rate cap that keeps a few seconds far below 5 MB.
CRF = 23
MAX_RATE = "3M"
PRESET = "veryfast"


class EncodeError(RuntimeError):
    """ffmpeg failed; the message carries the end of its error output."""


def _drain(stream: IO[bytes], sink: list[bytes]) -> None:
    for chunk in iter(lambda: stream.read(1 << 16), b""):
        sink.append(chunk)


def encode_mp4(
    frames: Iterable[np.ndarray], fps: float, *, in_memory_file: bool | None = None
) -> bytes:
    """The frames (equal-size RGB uint8 arrays, even width and height) as an H.264/yuv420p MP4.

    ``in_memory_file`` picks the output (default: a memfd where the OS has one, else a pipe).
    """
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise ValueError("no frames to encode")
    height, width = first.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"H.264 yuv420p needs even sizes, got {width}x{height}")
    use_memfd = hasattr(os, "memfd_create") if in_memory_file is None else in_memory_file
    fd = os.memfd_create("dfb-clip", 0) if use_memfd else -1
    output, container = (
        (f"/proc/self/fd/{fd}", ["-movflags", "+faststart"]) if use_memfd
        else ("pipe:1", ["-movflags", "frag_keyframe+empty_moov"])
    )
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps}",
        "-i", "pipe:0", "-an", "-c:v", "libx264", "-preset", PRESET, "-crf", str(CRF),
        "-maxrate", MAX_RATE, "-bufsize", MAX_RATE, "-pix_fmt", "yuv420p",
        *container, "-f", "mp4", "-y", output,
    ]
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(fd,) if use_memfd else (),
        )
        stdout: list[bytes] = []
        stderr: list[bytes] = []
        readers = [threading.Thread(target=_drain, args=(process.stdout, stdout), daemon=True),
                   threading.Thread(target=_drain, args=(process.stderr, stderr), daemon=True)]
        for reader in readers:
            reader.start()
        try:
            for frame in (first, *iterator):
                if frame.shape != first.shape:
                    raise ValueError(f"frame of shape {frame.shape}, expected {first.shape}")
                process.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        except BrokenPipeError:
            pass  # ffmpeg stopped: its error output says why
        finally:
            process.stdin.close()
        code = process.wait()
        for reader in readers:
            reader.join()
        if code != 0:
            detail = b"".join(stderr).decode(errors="replace").strip()[-500:]
            raise EncodeError(f"ffmpeg exited with {code}: {detail}")
        if not use_memfd:
            return b"".join(stdout)
        with os.fdopen(os.dup(fd), "rb") as file:
            return file.read()
    finally:
        if use_memfd:
            os.close(fd)
