"""POST /api/users/upload-photo over real HTTP, stored in a local S3-compatible server (moto)."""

from __future__ import annotations

import io
import struct
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import attrs
import pytest
from PIL import ExifTags, Image, ImageFile

from tests.fakes.s3 import FAKE_KEY, FAKE_SECRET, create_bucket, moto_s3_server, object_count
from tests.support.accounts import auth, signup
from tests.support.network import free_port
from tests.support.photos import UPLOAD, form, gps_jpeg, jpeg_bytes, noise_png, png_bomb, png_bytes, upload, webp_bytes
from truebond import bootstrap
from truebond.adapters.storage import S3Storage
from truebond.config import Settings

# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One moto S3 server for the whole run."""
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh bucket per test."""
    return create_bucket(s3_endpoint)


@pytest.fixture
def settings(settings: Settings, s3_endpoint: str, s3_bucket: str) -> Settings:
    """The test settings with CLOUD_STORAGE_PROVIDER=s3 pointed at the fake server."""
    return attrs.evolve(
        settings,
        cloud_storage_provider="s3",
        cloud_storage_key=FAKE_KEY,
        cloud_storage_secret=FAKE_SECRET,
        cloud_storage_bucket=s3_bucket,
        storage_endpoint=s3_endpoint,
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client, to fetch stored objects by their public URL."""
    async with aiohttp.ClientSession() as session:
        yield session


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    """GET a URL."""
    async with http.get(url) as resp:
        return resp.status, await resp.read()


async def photo_events(runtime: bootstrap.Runtime, user_id: str) -> list[Any]:
    """The PhotoAdded events of a user's stream."""
    return [r for r in await runtime.unit.store.load(f"user-{user_id}") if r.type == "PhotoAdded"]


# ---------------------------------------------------------------- tests


async def test_png_renamed_jpg_is_stored_as_png(
    client: Any, runtime: bootstrap.Runtime, http: aiohttp.ClientSession, s3_endpoint: str, s3_bucket: str
) -> None:
    user = await signup(client)
    status, body = await upload(client, user["access_token"], png_bytes(), filename="holiday.jpg", content_type="image/jpeg")
    assert status == 200, body
    url = body["url"]
    assert url.startswith(f"{s3_endpoint}/{s3_bucket}/photos/") and url.endswith(".png")
    assert "holiday" not in url
    assert body["profile_pictures"] == [url]
    got_status, stored = await fetch(http, url)
    assert got_status == 200
    assert stored.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(stored)).format == "PNG"
    events = await photo_events(runtime, user["user"]["id"])
    assert len(events) == 1 and events[0].event.content_type == "image/png"
    me = await (await client.get("/api/auth/me", headers=auth(user["access_token"]))).json()
    assert me["profile_pictures"] == [url] and me["profile_picture"] == url


async def test_svg_is_refused_with_415(client: Any, s3_endpoint: str, s3_bucket: str) -> None:
    user = await signup(client)
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'
    status, body = await upload(client, user["access_token"], svg, filename="x.svg", content_type="image/svg+xml")
    assert status == 415, body
    assert body["code"] == "unsupported_media_type"
    assert object_count(s3_endpoint, s3_bucket) == 0


async def test_text_file_named_png_is_refused_with_415(client: Any, s3_endpoint: str, s3_bucket: str) -> None:
    user = await signup(client)
    status, body = await upload(
        client, user["access_token"], b"just some text, not a picture\n" * 20, filename="cat.png", content_type="image/png"
    )
    assert status == 415, body
    assert object_count(s3_endpoint, s3_bucket) == 0


async def test_png_header_with_garbage_is_refused_with_415(client: Any) -> None:
    user = await signup(client)
    status, body = await upload(client, user["access_token"], b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50, filename="a.png")
    assert status == 415, body


async def test_six_mib_image_is_refused_with_413(client: Any, runtime: bootstrap.Runtime, s3_endpoint: str, s3_bucket: str) -> None:
    user = await signup(client)
    big = noise_png(6 * 1024 * 1024)
    status, body = await upload(client, user["access_token"], big, filename="big.png", content_type="image/png")
    assert status == 413, body
    assert body["code"] == "payload_too_large"
    assert await photo_events(runtime, user["user"]["id"]) == []
    assert object_count(s3_endpoint, s3_bucket) == 0


async def test_oversize_upload_without_content_length_is_cut_off_with_413(client: Any) -> None:
    """A chunked body declares no length: the streaming read stops at 5 MiB."""
    user = await signup(client)
    boundary = "tbboundary1234"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n').encode()

    async def body() -> AsyncIterator[bytes]:
        yield head + b"\x89PNG\r\n\x1a\n"
        for _ in range(6 * 16):  # 6 MiB in 64 KiB pieces
            yield b"\x00" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {**auth(user["access_token"]), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    resp = await client.post(UPLOAD, data=body(), headers=headers)
    assert resp.status == 413, await resp.text()


async def test_png_bomb_is_refused_from_its_header_without_decoding(
    client: Any, runtime: bootstrap.Runtime, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, s3_bucket: str
) -> None:
    started = time.perf_counter()
    bomb = png_bomb(20000)
    assert time.perf_counter() - started < 5
    assert len(bomb) < 200_000
    assert struct.unpack(">II", bomb[16:24]) == (20000, 20000)
    decoded: list[str] = []
    original_load = ImageFile.ImageFile.load

    def spy_load(self: ImageFile.ImageFile) -> Any:
        decoded.append(f"{self.format} {self.size}")
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_load)
    user = await signup(client)
    status, body = await upload(client, user["access_token"], bomb, filename="bomb.png", content_type="image/png")
    assert status == 413, body
    assert body["code"] == "image_too_large"
    assert decoded == [], "pixel data of the bomb was decoded"
    assert await photo_events(runtime, user["user"]["id"]) == []
    assert object_count(s3_endpoint, s3_bucket) == 0


async def test_image_over_4096_pixels_on_a_side_is_refused_with_413(client: Any) -> None:
    user = await signup(client)
    status, body = await upload(client, user["access_token"], png_bytes((4097, 2), mode="L"), filename="wide.png")
    assert status == 413, body
    assert body["code"] == "image_too_large"


async def test_jpeg_with_gps_exif_is_stored_without_any_metadata(client: Any, http: aiohttp.ClientSession) -> None:
    user = await signup(client)
    original = gps_jpeg()
    assert b"Exif\x00\x00" in original and b"SpyCam" in original
    status, body = await upload(client, user["access_token"], original, filename="me.jpg")
    assert status == 200, body
    assert body["url"].endswith(".jpg")
    got, stored = await fetch(http, body["url"])
    assert got == 200
    assert b"Exif\x00\x00" not in stored
    assert b"SpyCam" not in stored and b"home address" not in stored
    img = Image.open(io.BytesIO(stored))
    assert img.format == "JPEG"
    assert len(img.getexif()) == 0
    assert not img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert not {"exif", "icc_profile", "comment", "xmp"} & set(img.info)
    assert img.size == (64, 48)


async def test_exif_orientation_is_applied_before_the_metadata_is_dropped(client: Any, http: aiohttp.ClientSession) -> None:
    user = await signup(client)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # rotate 90° clockwise to display
    status, body = await upload(client, user["access_token"], jpeg_bytes((60, 20), exif=exif))
    assert status == 200, body
    _, stored = await fetch(http, body["url"])
    assert Image.open(io.BytesIO(stored)).size == (20, 60)


async def test_webp_is_accepted_and_stays_webp(client: Any, http: aiohttp.ClientSession) -> None:
    user = await signup(client)
    status, body = await upload(client, user["access_token"], webp_bytes(), filename="x.png", content_type="image/png")
    assert status == 200, body
    assert body["url"].endswith(".webp")
    _, stored = await fetch(http, body["url"])
    assert Image.open(io.BytesIO(stored)).format == "WEBP"


async def test_sixth_photo_is_refused_with_409(client: Any, runtime: bootstrap.Runtime, s3_endpoint: str, s3_bucket: str) -> None:
    user = await signup(client)
    token = user["access_token"]
    for i in range(5):
        status, body = await upload(client, token, png_bytes(color=(i * 40, 0, 0)))
        assert status == 200, body
        assert len(body["profile_pictures"]) == i + 1
    status, body = await upload(client, token, png_bytes())
    assert status == 409, body
    assert body["code"] == "photo_limit"
    me = await (await client.get("/api/auth/me", headers=auth(token))).json()
    assert len(me["profile_pictures"]) == 5
    assert len(await photo_events(runtime, user["user"]["id"])) == 5
    assert object_count(s3_endpoint, s3_bucket) == 5


async def test_upload_needs_a_login(client: Any) -> None:
    resp = await client.post(UPLOAD, data=form(png_bytes()))
    assert resp.status == 401


async def test_upload_must_be_multipart_with_one_file_field(client: Any) -> None:
    user = await signup(client)
    token = user["access_token"]
    raw = await client.post(UPLOAD, data=png_bytes(), headers={**auth(token), "Content-Type": "image/png"})
    assert raw.status == 415
    status, body = await upload(client, token, png_bytes(), field="image")
    assert status == 422, body
    empty = aiohttp.FormData()
    empty.add_field("file", b"", filename="a.png", content_type="image/png")
    resp = await client.post(UPLOAD, data=empty, headers=auth(token))
    assert resp.status == 422


async def test_photo_removed_from_profile_is_deleted_from_storage(
    client: Any, http: aiohttp.ClientSession, s3_endpoint: str, s3_bucket: str
) -> None:
    user = await signup(client)
    token = user["access_token"]
    urls = [(await upload(client, token, png_bytes(color=(c, c, c))))[1]["url"] for c in (10, 90, 170)]
    resp = await client.put("/api/users/profile", json={"profile_pictures": [urls[2], urls[0]]}, headers=auth(token))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["user"]["profile_pictures"] == [urls[2], urls[0]]
    assert (await fetch(http, urls[1]))[0] == 404
    assert (await fetch(http, urls[0]))[0] == 200
    assert object_count(s3_endpoint, s3_bucket) == 2


async def test_storage_down_answers_503_and_records_nothing(client: Any, runtime: bootstrap.Runtime, s3_bucket: str) -> None:
    dead = S3Storage(s3_bucket, FAKE_KEY, FAKE_SECRET, endpoint=f"http://127.0.0.1:{free_port()}")
    runtime.unit.storage = dead
    try:
        user = await signup(client)
        status, body = await upload(client, user["access_token"], png_bytes())
        assert status == 503, body
        assert "127.0.0.1" not in str(body)
        assert await photo_events(runtime, user["user"]["id"]) == []
    finally:
        await dead.close()


async def test_photo_events_keep_the_url_encrypted_and_replay_matches(client: Any, runtime: bootstrap.Runtime) -> None:
    user = await signup(client)
    status, body = await upload(client, user["access_token"], png_bytes())
    assert status == 200
    raw = await runtime.unit.db["events"].find_one({"stream": f"user-{user['user']['id']}", "type": "PhotoAdded"})
    assert raw["subject"] == user["user"]["id"]
    assert body["url"] not in str(raw["data"])
    assert await runtime.unit.projections.diff(["users"]) == []


async def test_concurrent_uploads_never_exceed_five_or_leave_orphans(
    client: Any, runtime: bootstrap.Runtime, s3_endpoint: str, s3_bucket: str
) -> None:
    import asyncio

    user = await signup(client)
    token = user["access_token"]
    for i in range(3):
        assert (await upload(client, token, png_bytes(color=(i, i, i))))[0] == 200
    results = await asyncio.gather(*(upload(client, token, png_bytes(color=(50 + i, 0, 0))) for i in range(4)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 200, 409, 409], results
    me = await (await client.get("/api/auth/me", headers=auth(token))).json()
    assert len(me["profile_pictures"]) == 5
    assert len(await photo_events(runtime, user["user"]["id"])) == 5
    assert object_count(s3_endpoint, s3_bucket) == 5
