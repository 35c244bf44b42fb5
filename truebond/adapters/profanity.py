"""Profanity masking for chat text: better-profanity's word list and rules behind one small class.

better-profanity compares every word of a message with each of its ~900 listed words through
their leetspeak variants, one by one: about a second of CPU for a 2000-character message. The
adapter keeps the library's parsing, word list and character mapping, and only swaps the list
it searches for a trie walked with the same mapping, which answers the same membership question
in time proportional to the word's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from better_profanity import Profanity

from truebond.logging import get_logger

log = get_logger(__name__)

MASK_CHAR = "*"


class _Node:
    __slots__ = ("children", "terminal")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.terminal = False


class TrieWordSet:
    """The set of listed words, where a listed character also matches its leetspeak substitutes.

    `candidate in words` is True exactly when better-profanity's own `VaryingString(word) ==
    candidate` is for some listed word (its mapping substitutes one character for one).
    """

    def __init__(self, words: Iterable[str], char_map: Mapping[str, Iterable[str]]) -> None:
        self._root = _Node()
        for word in words:
            node = self._root
            for char in word.lower():
                node = node.children.setdefault(char, _Node())
            node.terminal = True
        # For a character seen in text, which listed characters it may stand for.
        self._stands_for: dict[str, set[str]] = {}
        for listed, substitutes in char_map.items():
            for sub in substitutes:
                self._stands_for.setdefault(sub, set()).add(listed)

    def __contains__(self, candidate: object) -> bool:
        if not isinstance(candidate, str) or not candidate:
            return False
        nodes = [self._root]
        for char in candidate:
            listed = self._stands_for.get(char, set()) | {char}
            nodes = [child for node in nodes for key in listed if (child := node.children.get(key)) is not None]
            if not nodes:
                return False
        return any(node.terminal for node in nodes)

    def __bool__(self) -> bool:
        return bool(self._root.children)


class ProfanityFilter:
    """Masks listed swear words (and their leetspeak spellings) with asterisks."""

    def __init__(self) -> None:
        self._profanity = Profanity()
        words = [str(w) for w in self._profanity.CENSOR_WORDSET]
        self._profanity.CENSOR_WORDSET = TrieWordSet(words, self._profanity.CHARS_MAPPING)

    def mask(self, text: str) -> str:
        """The text with every listed word replaced by asterisks."""
        return str(self._profanity.censor(text, MASK_CHAR))


_DEFAULT: ProfanityFilter | None = None


def default_filter() -> ProfanityFilter:
    """The process-wide filter (the word list is loaded once, on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ProfanityFilter()
    return _DEFAULT


def mask(text: str) -> str:
    """Mask the swear words of `text` with the process-wide filter."""
    return default_filter().mask(text)
