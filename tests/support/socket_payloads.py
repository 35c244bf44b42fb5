"""Hypothesis strategies for socket payloads, built from a route's JSON Schema (the one the OpenAPI
converter makes of its voluptuous schema): valid-ish, invalid, oversized and with unknown keys.

JSON only: a binary packet closes the connection by design (api/socket_guards.py GuardedServer),
so bytes are never drawn. Only the keywords our converter writes are understood (object, string, integer, number, boolean,
enum, anyOf, pattern, bounds); anything else is drawn as arbitrary JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

Strategy = st.SearchStrategy[Any]

JUNK: Strategy = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


def valid(schema: dict[str, Any], ids: Strategy) -> Strategy:
    """Values the schema accepts (ids: strategy for id-like strings, e.g. real user ids)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([valid(s, ids) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = {k: valid(v, ids) for k, v in props.items() if k in schema.get("required", [])}
        optional = {k: valid(v, ids) for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(required, optional=optional)
    if kind == "string":
        low, high = schema.get("minLength", 0), min(schema.get("maxLength", 64), 512)
        if "pattern" in schema:
            matcher = re.compile(schema["pattern"])
            pattern_text = st.from_regex(matcher, fullmatch=True).filter(lambda s: low <= len(s) <= high)
            return ids.filter(lambda s: low <= len(s) <= high and matcher.fullmatch(s) is not None) | pattern_text
        return ids.filter(lambda s: low <= len(s) <= high) | st.text(min_size=low, max_size=high)
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return JUNK


def _broken(value: dict[str, Any], data: st.DataObject, schema: dict[str, Any]) -> Any:
    """`value` with one field replaced by junk, or a required field removed."""
    keys = list(schema.get("properties", {}))
    if not keys:
        return data.draw(JUNK)
    key = data.draw(st.sampled_from(keys))
    if key in value and data.draw(st.booleans()):
        return {k: v for k, v in value.items() if k != key}
    return {**value, key: data.draw(JUNK)}


def _oversized(value: dict[str, Any], data: st.DataObject, schema: dict[str, Any]) -> Any:
    """`value` with a string far past its bound, or a 60 KiB blob (under the Engine.IO frame cap)."""
    strings = [k for k, v in schema.get("properties", {}).items() if v.get("type") == "string"]
    size = data.draw(st.sampled_from([1_000, 20_000, 60_000]))
    key = data.draw(st.sampled_from(strings)) if strings else "pad"
    return {**value, key: "x" * size}


def payloads(schema: dict[str, Any], ids: Strategy) -> Strategy:
    """Valid-ish, invalid, oversized, unknown-key and non-object payloads for one route."""
    good = valid(schema, ids)

    @st.composite
    def build(draw: Callable[..., Any]) -> Any:
        kind = draw(st.sampled_from(["valid", "invalid", "oversized", "unknown", "not-an-object"]))
        value = draw(good)
        if kind == "valid" or not isinstance(value, dict):
            return value
        data = draw(st.data())
        if kind == "invalid":
            return _broken(value, data, schema)
        if kind == "oversized":
            return _oversized(value, data, schema)
        if kind == "unknown":
            return {**value, draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in value)): draw(JUNK)}
        return draw(st.none() | st.integers() | st.text(max_size=30) | st.lists(JUNK, max_size=3))

    return build()


def draw_examples(strategy: Strategy, count: int) -> list[Any]:
    """`count` examples of `strategy`, the same ones on every run (no database, derandomized)."""
    out: list[Any] = []

    @settings(
        max_examples=count, database=None, derandomize=True, phases=[Phase.generate], suppress_health_check=list(HealthCheck), deadline=None
    )
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out[:count]
