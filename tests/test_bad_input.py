"""Bad input through the real Telegram path (issue 7): the fake Bot API → the real PTB bot →
a private Redis → a real worker process with the test engine. Every input is generated here.
Each kind is answered in the chat with a clear message in the user's language, the service
stays up, and nothing is written to disk (the worker runs in an empty directory with an empty
HOME/TMPDIR, the bot in another; both stay as they were)."""

from __future__ import annotations

import asyncio
import io
import os
import struct
import tempfile
import time
import zlib

import cv2
import numpy as np
import pytest
import pytest_asyncio
from PIL import Image
from redis.asyncio import Redis

from bot.core.users import SALT_KEY, User, UserHasher
from common.redis_server import start_local
from tests.e2e import (
    bot_config,
    delivered,
    listing,
    reply,
    result,
    running_bot,
    start_worker,
    write_config,
)
from tests.fake_telegram import Call, FakeTelegram

pytestmark = pytest.mark.asyncio(loop_scope="module")
GROUP = -1001234

# --- inputs ------------------------------------------------------------------------------------


def encode(image: Image.Image | np.ndarray, fmt: str, **options: object) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(side: int = 50_000) -> bytes:
    """A real decompression bomb: a 1-bit side x side PNG of zeros, a few hundred KB."""
    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row * 1000) for _ in range(side // 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", body)
            + png_chunk(b"IEND", b""))


def with_orientation(rgb: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(rgb, "JPEG", quality=92, exif=exif.tobytes())


def animated(frames: list[np.ndarray], fmt: str) -> bytes:
    images = [Image.fromarray(f) for f in frames]
    return encode(images[0], fmt, save_all=True, append_images=images[1:], duration=100, loop=0)


@pytest.fixture(scope="module")
def face(astronaut: np.ndarray) -> np.ndarray:
    """The astronaut at 128 x 128: a small photo with one face (quick for the test engine)."""
    return cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA)


# --- the service -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Directories where the service could write (watched) and one for its logs (not)."""
    root = tmp_path_factory.mktemp("bad-input")
    dirs = {name: root / name for name in ("worker_cwd", "worker_home", "bot_cwd", "logs")}
    for path in dirs.values():
        path.mkdir()
    return dirs


@pytest.fixture(scope="module")
def redis_url() -> str:  # a private server: no other test's worker serves these queues
    server = start_local()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def worker(redis_url: str, places: dict) -> object:
    """One worker; photos above 0.5 MP are scaled down (the 40-MP case stays quick)."""
    config = write_config(places["logs"] / "config.toml",
                          worker={"max_work_megapixels": 0.5, "poll_delay_s": 0.2})
    with open(places["logs"] / "worker.log", "w+b") as log:
        process = start_worker(redis_url, log, config, cwd=places["worker_cwd"],
                               home=places["worker_home"])
        try:
            process.wait_ready()
            yield process
        finally:
            process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def redis(redis_url: str):
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(fake: FakeTelegram, redis_url: str, worker, places: dict):
    """The bot, running in its own empty working and temporary directory."""
    cwd, tempdir = os.getcwd(), tempfile.tempdir
    os.chdir(places["bot_cwd"])
    tempfile.tempdir = str(places["bot_cwd"])
    try:
        async with running_bot(fake, redis_url, bot_config()) as app:
            places["before"] = listing(places["worker_cwd"], places["worker_home"],
                                       places["bot_cwd"])
            yield app
    finally:
        os.chdir(cwd)
        tempfile.tempdir = tempdir


async def expect(fake: FakeTelegram, user: int, phrase: str, *, timeout: float = 30.0,
                 lang: str = "en", **document: object) -> Call:
    """Send ``document`` (data, mime, name[, size]) and wait for the answer with ``phrase``."""
    since = time.monotonic()
    fake.send_document(user, lang=lang, **document)
    return await reply(fake, user, since, phrase, timeout)


# --- rejected inputs ----------------------------------------------------------------------------

MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 8
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 500
SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" '
       b'height="64"><circle cx="32" cy="32" r="30" fill="red"/></svg>')
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def rejected_inputs(face: np.ndarray) -> list[tuple[str, dict[str, object], str]]:
    """(kind, send_document arguments, phrase of the English answer)."""
    jpeg, png = encode(face, "JPEG"), encode(face, "PNG")
    rng = np.random.default_rng(7)
    over_limit = encode(Image.new("1", (8000, 7000)), "PNG")  # 56 MP, a 7 KB file
    corrupt = bytearray(png)
    corrupt[40:48] = b"\xff" * 8  # inside IHDR/IDAT: the checksum no longer matches
    return [
        ("zero bytes", dict(data=b"", mime="image/jpeg", name="empty.jpg"), "The file is empty"),
        ("random bytes named .jpg", dict(data=rng.bytes(5000), mime="image/jpeg",
                                         name="photo.jpg"), "not an image I can read"),
        ("truncated JPEG", dict(data=jpeg[: len(jpeg) // 2], mime="image/jpeg",
                                name="cut.jpg"), "incomplete"),
        ("truncated PNG", dict(data=png[: len(png) // 2], mime="image/png", name="cut.png"),
         "incomplete"),
        ("damaged PNG", dict(data=bytes(corrupt), mime="image/png", name="bad.png"), "damaged"),
        ("decompression bomb 50k x 50k", dict(data=bomb_png(), mime="image/png",
                                              name="bomb.png"), "too large"),
        ("56 MP, over the pixel limit", dict(data=over_limit, mime="image/png", name="big.png"),
         "too large"),
        ("1 x 1", dict(data=encode(face[:1, :1], "PNG"), mime="image/png", name="1.png"),
         "too small"),
        ("2 x 2", dict(data=encode(face[:2, :2], "PNG"), mime="image/png", name="2.png"),
         "too small"),
        ("HEIC", dict(data=HEIC, mime="image/heic", name="IMG_0001.HEIC"),
         "can't read this image format"),
        ("SVG", dict(data=SVG, mime="image/svg+xml", name="drawing.svg"),
         "can't read this image format"),
        ("PDF", dict(data=PDF, mime="application/pdf", name="scan.pdf"), "is not an image"),
        ("text file", dict(data=b"dear diary\n" * 20, mime="text/plain", name="notes.txt"),
         "is not an image"),
        ("video as document", dict(data=MP4, mime="video/mp4", name="clip.mp4"),
         "is not an image"),
        ("video as octet-stream", dict(data=MP4, mime="application/octet-stream",
                                       name="clip.bin"), "can't read this image format"),
        ("document over 20 MB", dict(data=jpeg, mime="image/jpeg", name="huge.jpg",
                                     size=25 * 1024 * 1024), "larger than 20 MB"),
    ]


async def test_rejected_inputs_are_told_clearly(bot, fake: FakeTelegram, redis: Redis, face
                                                ) -> None:
    user, started = 7001, time.monotonic()
    for kind, document, phrase in rejected_inputs(face):
        call = await expect(fake, user, phrase, **document)
        assert "Traceback" not in call.text and "Error" not in call.text, kind
    assert not delivered(fake, user, started)
    texts = fake.texts(user, started)
    assert sum("went wrong" in t for t in texts) == 0
    # PDF, text, video/mp4 and the one over 20 MB are refused before any download.
    assert len(fake.calls_to("getFile", since=started)) == len(rejected_inputs(face)) - 4


async def test_rejected_inputs_in_korean(bot, fake: FakeTelegram, face) -> None:
    user, rng = 7002, np.random.default_rng(8)
    await expect(fake, user, "읽을 수 있는 이미지가 아닙니다", lang="ko",
                 data=rng.bytes(3000), mime="image/png", name="사진.png")
    await expect(fake, user, "MB보다 큽니다", lang="ko", data=b"x", mime="image/jpeg",
                 name="big.jpg", size=30 * 1024 * 1024)
    await expect(fake, user, "최소 16×16", lang="ko", data=encode(face[:2, :2], "PNG"),
                 mime="image/png", name="tiny.png")
    await expect(fake, user, "이미지 파일이 아닙니다", lang="ko", data=PDF,
                 mime="application/pdf", name="문서.pdf")


async def test_bad_commands(bot, fake: FakeTelegram) -> None:
    for user, lang, phrase, unknown in ((7003, "en", "Strength must be a whole number",
                                         "I don't know that command"),
                                        (7004, "ko", "강도는 1(약함)부터", "알 수 없는 명령")):
        for command in ("/strength abc", "/strength 0", "/strength 99", "/strength -1",
                        "/strength 2 3"):
            since = time.monotonic()
            fake.send_text(user, command, lang=lang)
            await reply(fake, user, since, phrase)
        since = time.monotonic()
        fake.send_text(user, "/frobnicate now", lang=lang)
        await reply(fake, user, since, unknown)


# --- inputs that are adapted and protected -------------------------------------------------------


def adapted_inputs(face: np.ndarray) -> list[tuple[str, bytes, str, str]]:
    """(kind, file, mime, phrase in the result's caption)."""
    bgr16 = np.ascontiguousarray(face[..., ::-1]).astype(np.uint16) * 257
    palette = Image.fromarray(face).quantize(64)
    rgba = np.dstack([face, np.tile(np.linspace(0, 255, 128, dtype=np.uint8), (128, 1))])
    return [
        ("animated GIF", animated([face, face[::-1], 255 - face], "GIF"), "image/gif",
         "only the first frame"),
        ("animated WebP", animated([face, 255 - face], "WEBP"), "image/webp",
         "only the first frame"),
        ("CMYK JPEG", encode(Image.fromarray(face).convert("CMYK"), "JPEG"), "image/jpeg",
         "CMYK colours were converted"),
        ("16-bit PNG", cv2.imencode(".png", bgr16)[1].tobytes(), "image/png",
         "16-bit colour was reduced"),
        ("palette PNG with transparency", encode(palette, "PNG", transparency=0), "image/png",
         "Palette image"),
        ("RGBA PNG", encode(rgba, "PNG"), "image/png", "Transparency was flattened"),
        ("grayscale PNG", encode(Image.fromarray(face).convert("L"), "PNG"), "image/png",
         "Grayscale image"),
        ("AVIF (Pillow reads it)", encode(face, "AVIF"), "image/avif", "SSIM"),
    ]


async def test_formats_are_adapted_protected_and_say_so(bot, fake: FakeTelegram, face) -> None:
    user = 7005
    for kind, data, mime, phrase in adapted_inputs(face):
        since = time.monotonic()
        fake.send_document(user, data, mime=mime, name=f"photo.{mime.split('/')[1]}")
        document = await result(fake, user, since)
        assert phrase in document.text, (kind, document.text)
        protected = Image.open(io.BytesIO(document.files["document"]))
        assert protected.size == (128, 128) and protected.mode == "RGB", kind
    since = time.monotonic()  # the same note, in Korean
    fake.send_document(user, animated([face, 255 - face], "GIF"), mime="image/gif",
                       name="움짤.gif", lang="ko")
    assert "첫 프레임만 보호했습니다" in (await result(fake, user, since)).text


async def test_exif_orientations_1_to_8(bot, fake: FakeTelegram, face) -> None:
    user, wide = 7006, np.ascontiguousarray(face[:96])  # 128 wide, 96 high
    for orientation in range(1, 9):
        since = time.monotonic()
        fake.send_document(user, with_orientation(wide, orientation), mime="image/jpeg",
                           name=f"o{orientation}.jpg")
        document = await result(fake, user, since)
        size = Image.open(io.BytesIO(document.files["document"])).size
        assert size == ((128, 96) if orientation < 5 else (96, 128)), orientation
        assert ("turned upright" in document.text) == (orientation > 1), orientation


async def test_faces_many_few_small_cut_and_huge_photos(bot, fake: FakeTelegram, astronaut,
                                                        no_face) -> None:
    head = cv2.resize(astronaut[30:230, 130:330], (80, 80), interpolation=cv2.INTER_AREA)
    small = np.full((400, 400, 3), 200, np.uint8)
    small[180:204, 200:224] = cv2.resize(astronaut[30:230, 130:330], (24, 24))
    huge = cv2.resize(astronaut, (7300, 5480), interpolation=cv2.INTER_LINEAR)  # 40 MP
    cases = [
        ("no face", encode(no_face[::2, ::2], "JPEG"), "No face found on the original"),
        ("36 faces", encode(np.tile(head, (6, 6, 1)), "JPEG"), "SSIM"),
        ("face cut by the border", encode(astronaut[:, 230:][::2, ::2], "JPEG"), "SSIM"),
        ("very small face", encode(small, "JPEG"), "SSIM"),
        ("40-MP photo", encode(huge, "JPEG", quality=85), "scaled down before protection"),
        ("10000 x 20", encode(np.full((20, 10000, 3), 90, np.uint8), "PNG"), "SSIM"),
    ]
    user = 7007
    for kind, data, phrase in cases:
        since = time.monotonic()
        fake.send_document(user, data, mime="image/jpeg", name="photo.jpg")
        document = await result(fake, user, since, timeout=90)
        assert phrase in document.text, (kind, document.text)
    image = Image.open(io.BytesIO(document.files["document"]))
    assert image.size == (10000, 20)
    assert len(delivered(fake, user)) == len(cases)


# --- buttons and groups --------------------------------------------------------------------------


def _buttons(call: Call) -> dict[str, str]:
    rows = call.params["reply_markup"]["inline_keyboard"]
    return {button["text"]: button["callback_data"] for row in rows for button in row}


async def test_double_press_is_one_job_and_expired_buttons_ask_again(
    bot, fake: FakeTelegram, redis: Redis, face
) -> None:
    user, since = 7008, time.monotonic()
    fake.send_photo(user, [(encode(face, "JPEG"), 128, 128)])
    first = await result(fake, user, since)
    stronger = next(data for label, data in _buttons(first).items() if "Stronger" in label)

    since = time.monotonic()
    fake.press(user, first.result["message_id"], stronger)
    fake.press(user, first.result["message_id"], stronger)
    second = await result(fake, user, since)
    await asyncio.sleep(1.0)
    assert len(delivered(fake, user, since)) == 1 and "strength 4" in second.text
    assert sum("one at a time" in t for t in fake.texts(user, since)) == 1

    # 30 minutes later (the photo's TTL, run out now): the buttons ask for the photo again.
    keys = UserHasher(await redis.get(SALT_KEY)).keys(User("telegram", user))
    assert 0 < await redis.ttl(keys.photo) <= bot_config().privacy.photo_ttl_s
    await redis.pexpire(keys.photo, 1)
    await asyncio.sleep(0.05)
    for data in _buttons(second).values():
        since = time.monotonic()
        fake.press(user, second.result["message_id"], data)
        await reply(fake, user, since, "Please send it again")
    assert len(delivered(fake, user)) == 2


async def test_groups_where_the_bot_is_not_addressed_stay_quiet(bot, fake: FakeTelegram, face
                                                                ) -> None:
    user, since = 7009, time.monotonic()
    fake.send_group(GROUP, user, text="hello everyone")
    fake.send_group(GROUP, user, photo=[(encode(face, "JPEG"), 128, 128)])
    fake.send_group(GROUP, user, document=(encode(face, "PNG"), "image/png", "me.png"))
    fake.send_group(GROUP, user, text="/help@some_other_bot")
    fake.send_group(GROUP, user, text="/frobnicate")
    fake.send_group(GROUP, user, text="/help@dfb_bot")  # addressed: answered, in the group
    await reply(fake, GROUP, since, "Send a photo")
    await asyncio.sleep(1.5)
    assert len([c for c in fake.calls if c.at >= since and c.chat_id == GROUP]) == 1
    assert not fake.calls_to("getFile", since=since) and not fake.texts(user, since)


# --- afterwards -----------------------------------------------------------------------------------


async def test_service_stays_up_writes_nothing_and_every_key_expires(
    bot, fake: FakeTelegram, redis: Redis, worker, places: dict, face
) -> None:
    user, since = 7010, time.monotonic()
    fake.send_photo(user, [(encode(face, "JPEG"), 128, 128)])
    await result(fake, user, since)
    assert worker.process.poll() is None
    assert "Traceback" not in worker.output()

    after = listing(places["worker_cwd"], places["worker_home"], places["bot_cwd"])
    # TensorFlow writes the Python code it generates for tf.function (autograph) to TMPDIR:
    # code, never data. Nothing else may appear, and nothing new may hold image bytes.
    new = {path for path in set(after) - set(places["before"])
           if not os.path.basename(path).startswith("__autograph_generated_file")}
    assert not new and {p: after[p] for p in places["before"]} == places["before"], new
    for path in set(after) - set(places["before"]):
        with open(path, "rb") as file:
            head = file.read()
        assert not head.startswith((b"\x89PNG", b"\xff\xd8", b"GIF8", b"RIFF")), path
        assert b"\x89PNG" not in head and b"JFIF" not in head, path
    keys = [key async for key in redis.scan_iter()]
    assert keys and [k for k in keys if await redis.ttl(k) == -1] == []  # -1: no expiry
