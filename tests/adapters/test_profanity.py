"""The profanity adapter masks exactly what better-profanity itself masks."""

from __future__ import annotations

import pytest
from better_profanity import Profanity

from truebond.adapters.profanity import ProfanityFilter

SAMPLES = [
    "you are a shit head, sh1t",
    "f*ck this",
    "b1tch please $hit",
    "what the fuck!!",
    "motherfucker and mother fucker",
    "hello assistant, the class passed the grass",
    "Scunthorpe is a town",
    "",
    "   ",
    "FUCK YOU",
    "a**hole",
    "😀 emoji fuck 😀",
    "line one\nline two shit",
]


@pytest.fixture(scope="module")
def library() -> Profanity:
    """The library's own filter, searching its list the slow way."""
    return Profanity()


@pytest.mark.parametrize("text", SAMPLES)
def test_the_adapter_masks_like_the_library(text: str, library: Profanity) -> None:
    assert ProfanityFilter().mask(text) == library.censor(text)


def test_a_long_message_is_masked_like_the_library(library: Profanity) -> None:
    text = ("nothing wrong here, then shit, then fine words again " * 40)[:2000]
    masked = ProfanityFilter().mask(text)
    assert masked == library.censor(text)
    assert "shit" not in masked and "****" in masked


def test_clean_text_is_unchanged() -> None:
    assert ProfanityFilter().mask("Hi! How are you? 🙂") == "Hi! How are you? 🙂"
