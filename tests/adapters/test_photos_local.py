"""The dev-only `local` storage provider: files on disk, served at BACKEND_URL/media/photos/<name>."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.support.accounts import auth, signup
from tests.support.photos import gps_jpeg, png_bytes, upload
from truebond import bootstrap
from truebond.adapters.storage import LocalStorage, S3Storage, StorageUnavailable, from_settings
from truebond.workers import maintenance


@pytest.fixture
def local(runtime: bootstrap.Runtime, tmp_path: Path) -> LocalStorage:
    """Local storage in a temporary directory."""
    storage = LocalStorage(tmp_path / "media", runtime.unit.settings.backend_url)
    runtime.unit.storage = storage
    return storage


def test_the_provider_follows_the_settings(runtime: bootstrap.Runtime) -> None:
    import attrs

    settings = runtime.unit.settings
    assert isinstance(from_settings(settings), LocalStorage)
    s3 = from_settings(attrs.evolve(settings, cloud_storage_provider="s3", storage_endpoint="http://127.0.0.1:9/"))
    assert isinstance(s3, S3Storage)
    assert s3.base_url == f"http://127.0.0.1:9/{settings.cloud_storage_bucket}/"
    aws = from_settings(attrs.evolve(settings, cloud_storage_provider="s3", cloud_storage_bucket="tb-photos"))
    assert isinstance(aws, S3Storage) and aws.base_url == "https://tb-photos.s3.amazonaws.com/"


async def test_local_upload_is_written_and_served(client: Any, local: LocalStorage) -> None:
    user = await signup(client)
    status, body = await upload(client, user["access_token"], gps_jpeg(), filename="../../etc/passwd.jpg")
    assert status == 200, body
    url = body["url"]
    assert url.startswith("https://api.truebond.test/media/photos/") and url.endswith(".jpg")
    files = list((local.root / "photos").iterdir())
    assert [f.name for f in files] == [url.rsplit("/", 1)[1]]
    resp = await client.get(url.removeprefix("https://api.truebond.test"))
    assert resp.status == 200
    assert resp.content_type == "image/jpeg"
    stored = await resp.read()
    assert stored == files[0].read_bytes()
    assert len(Image.open(io.BytesIO(stored)).getexif()) == 0
    assert await local.get(url) == stored


@pytest.mark.parametrize("name", ["..%2F..%2Fsetup.cfg", "notahexname.png", "0123456789abcdef0123456789abcdef.svg", "%2e%2e"])
async def test_media_route_serves_only_well_formed_names(client: Any, local: LocalStorage, name: str) -> None:
    assert (await client.get(f"/media/photos/{name}")).status == 404


async def test_media_route_is_off_with_s3(client: Any, runtime: bootstrap.Runtime, local: LocalStorage) -> None:
    user = await signup(client)
    _, body = await upload(client, user["access_token"], png_bytes())
    path = body["url"].removeprefix("https://api.truebond.test")
    assert (await client.get(path)).status == 200
    runtime.unit.storage = S3Storage("bucket", "k", "s", endpoint="http://127.0.0.1:9")
    assert (await client.get(path)).status == 404


async def test_profile_url_list_cannot_point_at_local_files_of_others(client: Any, local: LocalStorage) -> None:
    alice = await signup(client)
    bob = await signup(client)
    _, body = await upload(client, bob["access_token"], png_bytes())
    resp = await client.put("/api/users/profile", json={"profile_pictures": [body["url"]]}, headers=auth(alice["access_token"]))
    assert resp.status == 422


async def test_deleting_the_account_removes_its_photos_from_storage(client: Any, local: LocalStorage) -> None:
    user = await signup(client)
    other = await signup(client)
    status, mine = await upload(client, user["access_token"], gps_jpeg())
    assert status == 200, mine
    status, theirs = await upload(client, other["access_token"], gps_jpeg())
    assert status == 200, theirs
    resp = await client.delete("/api/users/account", headers=auth(user["access_token"]))
    assert resp.status == 200, await resp.json()
    names = sorted(f.name for f in (local.root / "photos").iterdir())
    assert names == [theirs["url"].rsplit("/", 1)[1]]
    assert await local.get(mine["url"]) is None


async def test_photo_storage_down_at_deletion_holds_the_key_until_the_sweep_removes_the_photos(
    client: Any, runtime: bootstrap.Runtime, local: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await signup(client)
    user_id = user["user"]["id"]
    status, body = await upload(client, user["access_token"], gps_jpeg())
    assert status == 200, body

    async def storage_down(url: str) -> None:
        raise StorageUnavailable("local storage unavailable")

    monkeypatch.setattr(local, "delete", storage_down)
    assert (await client.delete("/api/users/account", headers=auth(user["access_token"]))).status == 200
    # The photo URL lives only in the (encrypted) events now: the key must outlive the photo.
    assert await local.get(body["url"]) is not None
    assert (await runtime.unit.db["subject_keys"].find_one({"_id": user_id}))["key"] is not None
    assert (await maintenance.sweep_once(runtime.bus)).erasures_finished == 0

    monkeypatch.undo()
    assert (await maintenance.sweep_once(runtime.bus)).erasures_finished == 1
    assert await local.get(body["url"]) is None
    assert list((local.root / "photos").iterdir()) == []
    assert (await runtime.unit.db["subject_keys"].find_one({"_id": user_id}))["key"] is None
