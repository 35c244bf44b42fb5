"""`truebond dev --data-dir DIR`: the embedded (in-memory) database kept across restarts.

mongomock keeps nothing on disk, so at exit every collection is written to `DIR/<name>.bson`
(concatenated BSON documents, written to a temporary file and renamed into place), and at start
they are read back before the indexes are created. Dev only: production uses a real MongoDB.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions

from truebond.logging import get_logger

log = get_logger(__name__)
SUFFIX = ".bson"
_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)


def _write(path: Path, docs: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(SUFFIX + ".tmp")
    with tmp.open("wb") as out:
        for doc in docs:
            out.write(bson.encode(doc))
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def _read(path: Path) -> list[dict[str, Any]]:
    return list(bson.decode_all(path.read_bytes(), _OPTIONS))


def _saved(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


def _prune(folder: Path, keep: set[str]) -> None:
    for stale in _saved(folder):
        if stale.stem not in keep:
            stale.unlink()


async def save(db: Any, folder: Path) -> int:
    """Write every collection of `db` to `folder`; returns the number of documents written."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    names = set(await db.list_collection_names())
    total = 0
    for name in sorted(names):
        docs = [doc async for doc in db[name].find({})]
        await asyncio.to_thread(_write, folder / f"{name}{SUFFIX}", docs)
        total += len(docs)
    # A collection dropped since the last save must not come back.
    await asyncio.to_thread(_prune, folder, names)
    log.info("dev.database_saved", collections=len(names), documents=total)
    return total


async def load(db: Any, folder: Path) -> int:
    """Read the collections saved in `folder` into `db` (an empty or missing folder loads nothing)."""
    total = 0
    for path in await asyncio.to_thread(_saved, folder):
        docs = await asyncio.to_thread(_read, path)
        if docs:
            await db[path.stem].insert_many(docs)
        total += len(docs)
    log.info("dev.database_loaded", documents=total)
    return total
