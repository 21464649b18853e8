"""The job contract between the bot (producer) and the worker (consumer), versioned.

Jobs travel through arq on Redis as plain dicts (``to_dict``/``from_dict``), so neither side
needs the other's code. Every request carries a ``request_id`` chosen by the producer: jobs are
enqueued with ``_job_id=request_id`` (arq refuses a second job with the same id while the first
is known) and results are delivered at most once by claiming ``delivered_key(request_id)``.

Progress is not part of arq: the worker writes a small JSON value under ``progress_key`` (with a
TTL) as the job moves, and the bot reads it to edit the user's status message.

Wire format: arq pickles; both sides use ``dumps``/``loads`` (only plain data and known exception
classes are unpickled; stored results drop the job's arguments). Latency: the producer pushes to
``wake_key(queue)`` after enqueueing and the worker to ``done_key(request_id)`` once the result is
stored, so neither side waits for a polling interval.
"""

from __future__ import annotations

import builtins
import io
import json
import pickle
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Self

#: Bump when a field changes meaning; both sides refuse a dict of another major version.
VERSION = 1

#: arq queue names. Fast work (protect, variants) never waits behind slow work (clips).
FAST_QUEUE = "dfb:queue:fast"
SLOW_QUEUE = "dfb:queue:slow"

#: arq function names, and the queue each one runs on.
PROTECT = "protect"
VARIANTS = "variants"
CLIP = "clip"
QUEUE_OF = {PROTECT: FAST_QUEUE, VARIANTS: FAST_QUEUE, CLIP: SLOW_QUEUE}

#: Every key the service writes starts with this prefix and has a TTL.
KEY_PREFIX = "dfb:"


def progress_key(request_id: str) -> str:
    """Redis key of a job's progress JSON (``Progress``)."""
    return f"{KEY_PREFIX}progress:{request_id}"


def delivered_key(request_id: str) -> str:
    """Redis key the deliverer claims (SET NX) before sending a result, so it is sent once."""
    return f"{KEY_PREFIX}delivered:{request_id}"


def wake_key(queue: str) -> str:
    """Redis list a producer pushes to after enqueueing, so an idle worker starts at once."""
    return f"{queue}:wake"


def done_key(request_id: str) -> str:
    """Redis list a worker pushes to once a job's result is stored, so the waiter wakes at once."""
    return f"{KEY_PREFIX}done:{request_id}"


def cancel_key(request_id: str) -> str:
    """Redis key set (with a TTL) when the user said ``/forget`` while a worker runs the job: the
    worker stops it and deletes every key of the job, its result included, once it ends."""
    return f"{KEY_PREFIX}cancel:{request_id}"


#: Classes a job or result pickle may name: arq's job envelopes hold only plain data, and failed
#: results hold a builtin or arq exception. Anything else is refused, so a tampered Redis cannot
#: make the bot or a worker run code, and the bot never imports worker modules to read a result.
_PICKLE_ALLOWED = {
    ("arq.worker", "JobExecutionFailed"), ("arq.worker", "Retry"),
    ("arq.jobs", "SerializationError"), ("arq.jobs", "DeserializationError"),
    ("asyncio.exceptions", "CancelledError"), ("asyncio.exceptions", "TimeoutError"),
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        builtin = getattr(builtins, name, None) if module == "builtins" else None
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            return builtin
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to unpickle {module}.{name}")


def dumps(envelope: dict[str, Any]) -> bytes:
    """arq ``job_serializer``: pickle, but a stored *result* drops the job's arguments (arq
    keeps them by default), so the user's original image is not kept a second time."""
    if "r" in envelope:
        envelope = {**envelope, "a": (), "k": {}}
    return pickle.dumps(envelope, protocol=pickle.HIGHEST_PROTOCOL)


def loads(raw: bytes) -> dict[str, Any]:
    """arq ``job_deserializer``: unpickle plain data and known exception classes only."""
    return _Unpickler(io.BytesIO(raw)).load()


class ContractError(ValueError):
    """A dict that is not a valid message of this contract version."""


@dataclass(frozen=True)
class _Message:
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """A plain, pickle- and JSON-friendly dict (bytes stay bytes)."""
        return {"v": VERSION, "kind": self.kind, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Validate the version and kind; unknown keys are ignored (newer minor producers)."""
        if not isinstance(data, dict) or data.get("v") != VERSION or data.get("kind") != cls.kind:
            raise ContractError(f"not a v{VERSION} {cls.kind!r} message")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ProtectRequest(_Message):
    """Protect one photo. ``image`` is the file's bytes exactly as the user sent them."""

    kind: ClassVar[str] = PROTECT
    request_id: str
    image: bytes
    strength: int = 3
    filter: str | None = None      # applied before protection (issue 4); None = natural
    seed: int = 0
    test_profile: bool = False     # the fast test profile instead of ``strength`` (tests only)


@dataclass(frozen=True, kw_only=True)
class _Result(_Message):
    """Common to every result: ``error`` is None on success, else a stable code."""

    error: str | None = None
    error_detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ProtectResult(_Result):
    """The outcome of a ``ProtectRequest``.

    ``error`` is None on success. Otherwise it is a stable code that the bot turns into a message
    in the user's language (``ImageError`` codes such as ``not_an_image``, ``too_many_pixels``,
    or ``internal`` after the retries are spent); ``error_detail`` is English, for logs only.
    """

    kind: ClassVar[str] = "protect_result"
    request_id: str
    png: bytes = b""               # the protected image, lossless, no metadata
    preview: bytes = b""           # small before|after JPEG for the chat
    report: dict[str, Any] = field(default_factory=dict)   # worker.attack.verify report
    notes: list[str] = field(default_factory=list)         # decode notes (animated_first_frame…)
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class VariantsRequest(_Message):
    """Render a photo in every filter as one labelled contact sheet (issue 4)."""

    kind: ClassVar[str] = VARIANTS
    request_id: str
    image: bytes
    locale: str | None = None      # "ko…" labels the sheet in Korean where a font allows


@dataclass(frozen=True)
class VariantsResult(_Result):
    """The outcome of a ``VariantsRequest``: ``sheet`` is a JPEG grid of the photo in every
    filter, row by row in the order of ``names`` (filter ids for ``ProtectRequest.filter``);
    ``labels`` are the same filters' names for people, in the request's locale. ``error`` codes
    are those of ``ProtectResult``."""

    kind: ClassVar[str] = "variants_result"
    request_id: str
    sheet: bytes = b""
    names: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    columns: int = 0               # thumbnails per row of the sheet
    notes: list[str] = field(default_factory=list)
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class ClipRequest(_Message):
    """Make the deepfake comparison clip of a photo (issue 5): the worker protects ``image`` at
    ``strength`` and runs one face-swap pipeline on the original and on the protected photo."""

    kind: ClassVar[str] = CLIP
    request_id: str
    image: bytes
    strength: int = 3
    locale: str | None = None      # "ko…" captions the clip in Korean where a font allows
    seed: int = 0
    test_profile: bool = False     # the fast test profile instead of ``strength`` (tests only)


@dataclass(frozen=True)
class ClipResult(_Result):
    """The outcome of a ``ClipRequest``: ``video`` is an H.264 MP4 (original | protected);
    ``report`` says per side whether a face was found and the identity distances
    (``worker.faceswap.clip.Clip.report``). ``error`` codes are those of ``ProtectResult``."""

    kind: ClassVar[str] = "clip_result"
    request_id: str
    video: bytes = b""
    report: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    width: int = 0                 # of the video
    height: int = 0
    seconds: float = 0.0           # duration of the video


@dataclass(frozen=True)
class Progress:
    """What a job is doing now: ``stage`` in {queued, decoding, protecting, verifying, done,
    failed} (clips also: extracting, swapping, rendering) and ``fraction`` 0..1 of the job."""

    stage: str
    fraction: float = 0.0

    def to_json(self) -> str:
        return json.dumps({"stage": self.stage, "fraction": round(self.fraction, 3)})

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> Progress | None:
        if not raw:
            return None
        data = json.loads(raw)
        return cls(stage=str(data["stage"]), fraction=float(data.get("fraction", 0.0)))
