"""Bounded flattening of nested JSON into the flat dotted keys events use.

``{"a": {"b": 1}, "c": [1, 2]}`` -> ``{"a.b": 1, "c": [1, 2]}``. Events are flat (see
:mod:`soc.model`): only lists stay as values. A list of scalars is kept (as strings when it
mixes types, so a store never sees ``[1, "a"]`` in one field); a list holding objects or
lists is kept as its compact JSON text. Limits keep one hostile document from producing
thousands of columns: nesting deeper than ``max_depth`` is kept as JSON text, and after
``max_keys`` fields the rest is dropped (the caller marks the event partial; the whole
document is still in ``event.original``). Keys are cleaned (no empty names or stray dots)
and capped at 128 characters. The first value written for a key wins.
"""

from __future__ import annotations

from typing import Any

import orjson

from soc.ingest.values import clean_key

MAX_DEPTH = 8
MAX_KEYS = 512
MAX_LIST = 256


def _list_value(items: list[Any]) -> Any:
    if any(isinstance(item, dict | list) for item in items):
        return orjson.dumps(items).decode()
    kept = [item for item in items[:MAX_LIST] if item is not None]
    if len({type(item) for item in kept}) > 1:
        return [str(item) for item in kept]
    return kept


def flatten(obj: dict[str, Any], prefix: str, out: dict[str, Any], max_depth: int = MAX_DEPTH, max_keys: int = MAX_KEYS) -> bool:
    """Flatten ``obj`` into ``out`` under ``prefix``; True when something was left out."""
    return _walk(obj, prefix, out, max_depth, len(out) + max_keys)


def _walk(node: dict[str, Any], prefix: str, out: dict[str, Any], depth: int, limit: int) -> bool:
    truncated = False
    for raw_key, value in node.items():
        if len(out) >= limit:
            return True
        key = prefix + clean_key(str(raw_key)[:128])
        if isinstance(value, dict):
            if not value:
                continue
            if depth <= 1:
                out.setdefault(key, orjson.dumps(value).decode())
            elif _walk(value, key + ".", out, depth - 1, limit):
                truncated = True
        elif isinstance(value, list):
            if value:
                out.setdefault(key, _list_value(value))
        elif value is not None:
            out.setdefault(key, value)
    return truncated
