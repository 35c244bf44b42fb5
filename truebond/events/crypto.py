"""Per-person encryption keys (AES-GCM) kept in their own collection, for crypto-shredding."""

from __future__ import annotations

import base64
import os
import time
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pymongo.errors import DuplicateKeyError

from truebond.errors import InfrastructureError

ENC_PREFIX = "enc:v1:"
ERASED = "[erased]"
KEY_CACHE_SECONDS = 30.0


class SubjectErased(InfrastructureError):
    """The subject's key was destroyed; nothing new may be encrypted for them."""


class SubjectKeys:
    """Keys per subject in the `subject_keys` collection; erasing deletes the key bytes."""

    def __init__(self, collection: Any) -> None:
        self._coll = collection
        self._cache: dict[str, tuple[float, bytes | None]] = {}

    async def _lookup(self, subject: str) -> bytes | bool | None:
        cached = self._cache.get(subject)
        if cached is not None and time.monotonic() - cached[0] < KEY_CACHE_SECONDS:
            return cached[1]
        doc = await self._coll.find_one({"_id": subject})
        if doc is None:
            return False
        key = bytes(doc["key"]) if doc.get("key") else None
        self._cache[subject] = (time.monotonic(), key)
        return key

    async def key_for_write(self, subject: str) -> bytes:
        """The subject's key, created on first use; refuses an erased subject."""
        found = await self._lookup(subject)
        if found is None:
            raise SubjectErased(subject)
        if isinstance(found, bytes):
            return found
        key = AESGCM.generate_key(bit_length=256)
        try:
            await self._coll.insert_one({"_id": subject, "key": key, "created_at": datetime.now(UTC)})
        except DuplicateKeyError:
            self._cache.pop(subject, None)
            return await self.key_for_write(subject)
        self._cache[subject] = (time.monotonic(), key)
        return key

    async def key_for_read(self, subject: str) -> bytes | None:
        """The subject's key, or None when it was erased (or never existed)."""
        found = await self._lookup(subject)
        return found if isinstance(found, bytes) else None

    async def erase(self, subject: str) -> None:
        """Destroy the subject's key, leaving a tombstone so no new key is ever made."""
        await self._coll.update_one(
            {"_id": subject},
            {"$set": {"key": None, "erased_at": datetime.now(UTC)}},
            upsert=True,
        )
        self._cache[subject] = (time.monotonic(), None)


def encrypt_value(key: bytes, value: str, aad: str) -> str:
    """Encrypt one string field; the event id and field name are bound as associated data."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, value.encode(), aad.encode())
    return ENC_PREFIX + base64.b64encode(nonce + sealed).decode()


def decrypt_value(key: bytes | None, value: Any, aad: str) -> Any:
    """Decrypt a field written by encrypt_value; an erased key yields the ERASED marker."""
    if not isinstance(value, str) or not value.startswith(ENC_PREFIX):
        return value
    if key is None:
        return ERASED
    raw = base64.b64decode(value[len(ENC_PREFIX) :])
    try:
        return AESGCM(key).decrypt(raw[:12], raw[12:], aad.encode()).decode()
    except InvalidTag:
        return ERASED
