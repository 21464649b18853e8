"""dlib's CNN in child processes: the same faces as in the worker, nothing lost when a child
dies, no child left behind when the worker dies."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import skimage.data

from worker.attack.verify import Verifier

ROLES = {"surrogates": ("dlib_mmod",), "evaluators": ("haar", "dlib_hog")}


def images() -> dict[str, np.ndarray]:
    astronaut = skimage.data.astronaut()
    return {"astronaut": astronaut, "mirrored": astronaut[:, ::-1].copy(),
            "small": astronaut[::2, ::2].copy(), "coffee": skimage.data.coffee()}


@pytest.fixture(scope="module")
def in_process() -> dict:
    return Verifier(**ROLES, processes=0).detect_many(images())


@pytest.fixture()
def verifier():
    verifier = Verifier(**ROLES, processes=2)
    yield verifier
    verifier.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().split(") ")[1][0] != "Z"


def test_children_find_what_the_worker_finds(verifier: Verifier, in_process: dict) -> None:
    assert verifier.processes is not None and verifier.processes.names == ("dlib_mmod",)
    verifier.start()
    children = multiprocessing.active_children()
    assert len(children) == 2
    found = verifier.detect_many(images())
    assert found == in_process
    assert found["astronaut"]["dlib_mmod"] and not found["coffee"]["dlib_mmod"]
    assert list(found["astronaut"]) == ["dlib_mmod", "haar", "dlib_hog"]  # report order
    assert {c.pid for c in multiprocessing.active_children()} == {c.pid for c in children}


def test_a_killed_child_loses_nothing(verifier: Verifier, in_process: dict) -> None:
    verifier.start()
    before = multiprocessing.active_children()
    for child in before:
        os.kill(child.pid, signal.SIGKILL)
    assert verifier.detect_all(images()["astronaut"]) == in_process["astronaut"]
    # the next photo gets new children
    assert verifier.detect_many(images()) == in_process
    after = {c.pid for c in multiprocessing.active_children()}
    assert after and not after & {c.pid for c in before}


def test_without_processes_nothing_is_started(in_process: dict) -> None:
    verifier = Verifier(**ROLES, processes=0)
    verifier.start()
    assert verifier.processes is None and not multiprocessing.active_children()
    assert verifier.detect_all(images()["mirrored"]) == in_process["mirrored"]


def test_children_exit_with_a_killed_worker() -> None:
    """A worker killed outright (SIGKILL, out of memory) leaves no detector process behind."""
    script = textwrap.dedent("""
        import multiprocessing, time
        from worker.attack.verify import Verifier
        verifier = Verifier(("dlib_mmod",), ("haar",), processes=2)
        verifier.start()
        print(" ".join(str(c.pid) for c in multiprocessing.active_children()), flush=True)
        time.sleep(300)
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        pids = [int(p) for p in worker.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
    finally:
        worker.kill()
        worker.wait()
    deadline = time.monotonic() + 20
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids)
