"""Detectors that hold Python's GIL, run in child processes so the rest run beside them.

dlib's CNN detector keeps the GIL for its whole run (seconds per image), so in one process
nothing else can run while it works: the report's other detectors, even the ones in threaded
C++, wait for it. Children (``spawn``: nothing inherited from a process that runs TensorFlow)
each load the detector once; images travel through a pipe, never through a file.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from worker import detectors
from worker.detectors.base import Face

log = logging.getLogger(__name__)


def _load(names: tuple[str, ...]) -> None:
    """A child's start: exit with the parent (a killed worker leaves no child behind: the
    pool's own queue never tells them), then load the detectors."""
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    for name in names:
        detectors.load(name)


def _exit_with_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()  # returns once the parent is gone, however it ended
        os._exit(0)


def _detect(name: str, rgb: np.ndarray) -> list[Face]:
    return detectors.load(name).detect(rgb)


class DetectorProcesses:
    """Up to ``processes`` children running the detectors ``names``; started on first use."""

    def __init__(self, names: tuple[str, ...], processes: int) -> None:
        self.names = tuple(names)
        self.processes = max(1, processes)
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_load, initargs=(self.names,),
            )
        return self._pool

    def submit(self, name: str, rgb: np.ndarray) -> Future[list[Face]]:
        """Detect in a child; a pool broken earlier (a child killed) is replaced first."""
        try:
            return self._executor().submit(_detect, name, rgb)
        except BrokenProcessPool:
            self.close()
            return self._executor().submit(_detect, name, rgb)

    def result(self, future: Future[list[Face]], name: str, rgb: np.ndarray) -> list[Face]:
        """The child's faces; if the child died (killed, out of memory), the same detector
        runs here instead, so the report is still complete."""
        try:
            return future.result()
        except BrokenProcessPool:
            log.warning("a detector process died; running %s in the worker instead", name)
            self.close()
            return detectors.load(name).detect(rgb)

    def start(self) -> None:
        """Start every child and load its models now (a worker's start-up), not on a photo."""
        tiny = np.zeros((32, 32, 3), np.uint8)
        futures = [self.submit(self.names[0], tiny) for _ in range(self.processes)]
        for future in futures:
            self.result(future, self.names[0], tiny)

    def close(self) -> None:
        """Stop the children (a later ``submit`` starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
