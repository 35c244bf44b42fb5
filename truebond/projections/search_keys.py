"""Normalised name keys: what people search is matched as a literal prefix of these, never a regex."""

from __future__ import annotations

import unicodedata

MAX_KEYS = 6


def normalise(text: str) -> str:
    """Case-folded, accents stripped, whitespace collapsed: "  Ásha   RAO " -> "asha rao"."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())


def name_keys(name: str) -> list[str]:
    """The whole normalised name and each later word of it, so "rao" finds "Asha Rao"."""
    full = normalise(name)
    if not full:
        return []
    words = full.split(" ")
    keys = [full, *(" ".join(words[i:]) for i in range(1, len(words)))]
    return list(dict.fromkeys(keys))[:MAX_KEYS]


def prefix_range(prefix: str) -> dict[str, str]:
    """The range of strings starting with `prefix`, for an indexed `$elemMatch` (literal, no regex)."""
    return {"$gte": prefix, "$lt": prefix + "\U0010ffff"}
