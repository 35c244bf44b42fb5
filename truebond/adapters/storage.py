"""Photo storage: `s3` (aiobotocore, AWS or any S3-compatible endpoint) and `local` (dev only).

Object keys are made here from `secrets` (never from a file name or anything else the client
sends), and so is the public URL handed back; `owns` tells whether a URL is one of ours.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from truebond.config import Settings
from truebond.errors import InfrastructureError
from truebond.logging import get_logger

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

log = get_logger(__name__)

KEY_PREFIX = "photos/"
KEY_PATTERN = re.compile(r"^photos/[0-9a-f]{32}\.(jpg|png|webp)$")
CACHE_CONTROL = "public, max-age=31536000, immutable"
DEFAULT_REGION = "us-east-1"
LOCAL_ROOT = Path("var/media")


class StorageUnavailable(InfrastructureError):
    """The object store did not take or remove an object (the message names no key or secret)."""


def new_key(extension: str) -> str:
    """A fresh random object key such as `photos/<32 hex>.png`."""
    if extension not in ("jpg", "png", "webp"):
        raise ValueError("unsupported extension")
    return f"{KEY_PREFIX}{secrets.token_hex(16)}.{extension}"


def key_of(base_url: str, url: str) -> str | None:
    """The object key of `url` when it is `base_url` followed by one of our keys, else None."""
    if not url.startswith(base_url):
        return None
    key = url[len(base_url) :]
    return key if KEY_PATTERN.match(key) else None


class Storage(Protocol):
    """Where checked photos go."""

    async def put(self, data: bytes, content_type: str, extension: str) -> str:
        """Store `data` under a new random key; returns the public URL built by the server."""
        ...

    def owns(self, url: str) -> bool:
        """Whether `url` is an object URL this storage handed out."""
        ...

    async def get(self, url: str) -> bytes | None:
        """The bytes behind one of our URLs (None for a foreign URL or a missing object)."""
        ...

    async def delete(self, url: str) -> None:
        """Remove the object behind one of our URLs (a foreign URL is ignored)."""
        ...

    async def close(self) -> None:
        """Release network clients."""
        ...


class S3Storage:
    """Objects in an S3 bucket through one long-lived aiobotocore client (created on first use)."""

    def __init__(
        self,
        bucket: str,
        access_key: str,
        secret_key: str,
        *,
        endpoint: str | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        self.bucket = bucket
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.region = region
        self._access_key = access_key or None
        self._secret_key = secret_key or None
        self._stack: AsyncExitStack | None = None
        self._client: S3Client | None = None
        self._lock = asyncio.Lock()
        # Path-style under a custom endpoint (MinIO, moto, R2...), virtual-hosted on AWS.
        self.base_url = f"{self.endpoint}/{bucket}/" if self.endpoint else f"https://{bucket}.s3.amazonaws.com/"

    async def _s3(self) -> S3Client:
        async with self._lock:
            if self._client is None:
                from aiobotocore.config import AioConfig
                from aiobotocore.session import get_session

                config = AioConfig(
                    connect_timeout=5,
                    read_timeout=30,
                    retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": "path" if self.endpoint else "virtual"},
                )
                stack = AsyncExitStack()
                self._client = await stack.enter_async_context(
                    get_session().create_client(
                        "s3",
                        region_name=self.region,
                        endpoint_url=self.endpoint,
                        aws_access_key_id=self._access_key,
                        aws_secret_access_key=self._secret_key,
                        config=config,
                    )
                )
                self._stack = stack
            return self._client

    def url_for(self, key: str) -> str:
        """The public URL of an object key."""
        return self.base_url + key

    def _key_of(self, url: str) -> str | None:
        return key_of(self.base_url, url)

    def owns(self, url: str) -> bool:
        """Whether `url` points at an object of this bucket with one of our keys."""
        return self._key_of(url) is not None

    async def put(self, data: bytes, content_type: str, extension: str) -> str:
        """PutObject under a random key; failures raise StorageUnavailable."""
        key = new_key(extension)
        try:
            client = await self._s3()
            await client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, CacheControl=CACHE_CONTROL)
        except Exception as exc:  # noqa: BLE001 - botocore, aiohttp and socket errors alike
            log.warning("storage.put_failed", provider="s3", error=type(exc).__name__)
            raise StorageUnavailable("object store unavailable") from None
        return self.url_for(key)

    async def get(self, url: str) -> bytes | None:
        """The bytes behind one of our URLs (None for a foreign URL or a missing object)."""
        key = self._key_of(url)
        if key is None:
            return None
        try:
            client = await self._s3()
            try:
                response = await client.get_object(Bucket=self.bucket, Key=key)
            except client.exceptions.NoSuchKey:
                return None
            async with response["Body"] as body:
                return await body.read()
        except Exception as exc:  # noqa: BLE001
            log.warning("storage.get_failed", provider="s3", error=type(exc).__name__)
            raise StorageUnavailable("object store unavailable") from None

    async def delete(self, url: str) -> None:
        """DeleteObject for one of our URLs; failures raise StorageUnavailable."""
        key = self._key_of(url)
        if key is None:
            return
        try:
            client = await self._s3()
            await client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            log.warning("storage.delete_failed", provider="s3", error=type(exc).__name__)
            raise StorageUnavailable("object store unavailable") from None

    async def close(self) -> None:
        """Close the client and its connection pool."""
        async with self._lock:
            if self._stack is not None:
                await self._stack.aclose()
            self._stack = None
            self._client = None


class LocalStorage:
    """Dev only: files under `root/photos/`, served by the API at BACKEND_URL/media/photos/<name>."""

    def __init__(self, root: Path, backend_url: str) -> None:
        self.root = root
        self.base_url = f"{backend_url.rstrip('/')}/media/"

    def _path_of(self, url: str) -> Path | None:
        key = key_of(self.base_url, url)
        return None if key is None else self.root / key

    def owns(self, url: str) -> bool:
        """Whether `url` is a media URL of this server with one of our keys."""
        return self._path_of(url) is not None

    def path_for_name(self, name: str) -> Path | None:
        """The file of `photos/<name>` when `name` is a well-formed key name (no traversal)."""
        key = KEY_PREFIX + name
        return self.root / key if KEY_PATTERN.match(key) else None

    async def put(self, data: bytes, content_type: str, extension: str) -> str:
        """Write the file under a random name; returns its /media URL."""
        key = new_key(extension)
        path = self.root / key

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            log.warning("storage.put_failed", provider="local", error=type(exc).__name__)
            raise StorageUnavailable("local storage unavailable") from None
        return self.base_url + key

    async def get(self, url: str) -> bytes | None:
        """The bytes behind one of our URLs (None when foreign or missing)."""
        path = self._path_of(url)
        if path is None:
            return None
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("storage.get_failed", provider="local", error=type(exc).__name__)
            raise StorageUnavailable("local storage unavailable") from None

    async def delete(self, url: str) -> None:
        """Remove the file behind one of our URLs."""
        path = self._path_of(url)
        if path is None:
            return
        try:
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            log.warning("storage.delete_failed", provider="local", error=type(exc).__name__)
            raise StorageUnavailable("local storage unavailable") from None

    async def close(self) -> None:
        """Nothing to release."""


def from_settings(settings: Settings, local_root: Path | None = None) -> Storage:
    """The storage CLOUD_STORAGE_PROVIDER names (`--storage-endpoint` points S3 elsewhere)."""
    if settings.cloud_storage_provider == "s3":
        return S3Storage(
            settings.cloud_storage_bucket,
            settings.cloud_storage_key,
            settings.cloud_storage_secret,
            endpoint=settings.storage_endpoint,
        )
    return LocalStorage(local_root or LOCAL_ROOT / (settings.cloud_storage_bucket or "default"), settings.backend_url)
