"""Small JSON state files (tail and inbox positions), written atomically.

A state file is replaced whole: the new content goes to a temporary file in the same folder,
is flushed to disk (``fsync``), then renamed over the old one, so a crash leaves either the old
or the new state, never half of one. A missing file reads as ``{}``; an unreadable one raises
:class:`~soc.ingest.sources.base.SourceError` naming the file (delete it to start over; the
deterministic event ids make the resulting re-read harmless).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from soc.ingest.sources.base import SourceError


def load_state(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the source state file: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SourceError(
            f"{path}: the source state file is not valid JSON ({exc}); delete it to re-read the "
            "input from the start (event ids are deterministic, nothing is stored twice)"
        ) from exc
    if not isinstance(data, dict):
        raise SourceError(f"{path}: the source state file must hold a JSON object")
    return data


def save_state(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
