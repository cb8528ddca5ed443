"""Canonical JSON: UTF-8, sorted keys, two-space indent, a final newline; validated first."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from soc.export.schema import validate


def canonical(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")


def render_json(document: BaseModel) -> bytes:
    data = document.model_dump(mode="json")
    validate(data)
    return canonical(data)
