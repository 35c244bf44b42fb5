"""Chat text rules: Unicode NFKC normalisation, 1-2000 characters, profanity masked."""

from __future__ import annotations

import asyncio
import unicodedata

from truebond.adapters import profanity

MAX_TEXT = 2000
# Longer texts are masked off the event loop (tens of milliseconds at the maximum length).
INLINE_MASK_CHARS = 200


def normalise(text: str) -> str:
    """The text in NFKC form without surrounding whitespace (what the length rule counts)."""
    return unicodedata.normalize("NFKC", text).strip()


async def clean(text: str) -> str:
    """Normalised text with its swear words masked."""
    normal = normalise(text)
    if len(normal) <= INLINE_MASK_CHARS:
        return profanity.mask(normal)
    return await asyncio.to_thread(profanity.mask, normal)
