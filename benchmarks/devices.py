"""Devices never seen: how much of every Wazuh test product the ingest understands (issue #14, item 5).

Usage: ``python benchmarks/devices.py [--data ../shared/data] [--labels tests/data/device_roles.yml]``

Over every ``.ini`` file of ``wazuh-tests`` (one per product: ``log N pass|fail = <raw line>``),
per product:

- ``lines``: lines read; ``stored``: events the ingest pipeline produced (auto format, as a
  syslog or file source would); ``parsed``/``partial``/``failed``: the pipeline's parse status;
- ``v4``: lines holding an IPv4 address (dotted quad, not part of a longer dotted number);
- ``full%``: the share of those lines whose event has an address in a role field
  (:data:`soc.ingest.generic.ROLE_FIELDS`; ``related.ip`` alone does not count) -- the whole
  ingest: parsers, program extractors, the YAML decoders, and the generic fallback;
- ``gen%``: the same share for the generic extraction alone (:func:`soc.ingest.generic.parse`:
  every product treated as unknown);
- ``dec``: lines a YAML decoder (``ingest/decoders``) decoded;
- ``lab``, ``full ok``, ``gen ok``: hand-labelled lines (``tests/data/device_roles.yml``) and
  how many got every labelled role right, for the whole ingest and for the generic alone.

The totals line is what the issue's closing note quotes. ``tests/test_device_coverage.py``
runs :func:`measure` and asserts the thresholds, so they cannot regress. Nothing is timed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from soc.ingest import Record, generic  # noqa: E402
from soc.ingest.normalize import SourceContext  # noqa: E402
from soc.ingest.pipeline import IngestPipeline  # noqa: E402

DATA = Path(os.environ.get("SOC_SHARED_DATA") or ROOT.parent / "shared" / "data")  # as tests/conftest.py
LABELS = ROOT / "tests" / "data" / "device_roles.yml"
_LOG = re.compile(r"^log \d+ (?:pass|fail) = (.*)$")
IPV4 = re.compile(r"(?<![\d.])(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(?![\d.])")
RECEIVED = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)


@dataclass
class Row:
    """One product's figures."""

    product: str
    lines: int = 0
    stored: int = 0
    parsed: int = 0
    partial: int = 0
    failed: int = 0
    v4: int = 0
    full_roles: int = 0
    generic_roles: int = 0
    decoded: int = 0
    labelled: int = 0
    full_right: int = 0
    generic_right: int = 0
    wrong: list[str] = field(default_factory=list)

    def add(self, other: Row) -> None:
        for name in ("lines", "stored", "parsed", "partial", "failed", "v4", "full_roles", "generic_roles", "decoded",
                     "labelled", "full_right", "generic_right"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.wrong.extend(other.wrong)


def ini_lines(path: Path) -> list[str]:
    """The raw log lines of one Wazuh test file, in order (``PRODUCT:N`` counts from 0)."""
    out = []
    for raw in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        m = _LOG.match(raw)
        if m:
            out.append(m.group(1))
    return out


def has_role(fields: dict[str, Any]) -> bool:
    return any(key in fields for key in generic.ROLE_FIELDS)


def roles_right(fields: dict[str, Any], expected: dict[str, str]) -> bool:
    """Every labelled role holds its address; ``{}``: no role field at all."""
    if not expected:
        return not has_role(fields)
    return all(str(fields.get(key)) == str(value) for key, value in expected.items())


def load_labels(path: Path = LABELS) -> dict[str, dict[str, str]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {str(k): dict(v or {}) for k, v in doc["labels"].items()}


def measure(data: Path = DATA, labels: dict[str, dict[str, str]] | None = None) -> list[Row]:
    """One :class:`Row` per ``.ini`` file of ``data/wazuh-tests``, in name order."""
    labels = load_labels() if labels is None else labels
    rows = []
    for path in sorted((data / "wazuh-tests").glob("*.ini")):
        lines = ini_lines(path)
        row = Row(path.stem, lines=len(lines))
        pipeline = IngestPipeline(SourceContext(source="wazuh-tests", agency_id="test"), fmt="auto")
        records = [Record(raw=line.encode("utf-8", "surrogateescape"), event_id=f"{path.stem}:{i}", received=RECEIVED,
                          origin=f"{path.name}:{i}") for i, line in enumerate(lines)]
        events = pipeline.process(records)
        counters = pipeline.counters.as_dict()
        row.stored, row.parsed, row.partial, row.failed = len(events), counters["parsed"], counters["partial"], counters["failed"]
        for i, line in enumerate(lines):
            event = events[i] if i < len(events) else {}  # one event per record, in order
            alone = generic.parse(line).fields
            if event.get("soc.parse.decoder"):
                row.decoded += 1
            if IPV4.search(line):
                row.v4 += 1
                row.full_roles += has_role(event)
                row.generic_roles += has_role(alone)
            expected = labels.get(f"{path.stem}:{i}")
            if expected is not None:
                row.labelled += 1
                full_ok = roles_right(event, expected)
                row.full_right += full_ok
                row.generic_right += roles_right(alone, expected)
                if not full_ok:
                    got = {k: event.get(k) for k in generic.ROLE_FIELDS if k in event}
                    row.wrong.append(f"{path.stem}:{i} expected {expected} got {got}")
        rows.append(row)
    return rows


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}" if whole else "    -"


def table(rows: list[Row]) -> tuple[str, Row]:
    total = Row("TOTAL")
    out = [f"{'product':38s} {'lines':>5s} {'stored':>6s} {'parsed':>6s} {'partial':>7s} {'failed':>6s} {'v4':>4s} "
           f"{'full%':>6s} {'gen%':>6s} {'dec':>4s} {'lab':>4s} {'full ok':>7s} {'gen ok':>6s}"]
    for row in [*rows, None]:
        if row is None:
            row = total
        else:
            total.add(row)
        out.append(f"{row.product:38s} {row.lines:5d} {row.stored:6d} {row.parsed:6d} {row.partial:7d} {row.failed:6d} "
                   f"{row.v4:4d} {_pct(row.full_roles, row.v4):>6s} {_pct(row.generic_roles, row.v4):>6s} {row.decoded:4d} "
                   f"{row.labelled:4d} {row.full_right:7d} {row.generic_right:6d}")
    out.append(f"role share over IPv4-bearing lines: whole ingest {_pct(total.full_roles, total.v4)}% "
               f"({total.full_roles}/{total.v4}), generic alone {_pct(total.generic_roles, total.v4)}% "
               f"({total.generic_roles}/{total.v4})")
    out.append(f"hand-labelled roles right: whole ingest {_pct(total.full_right, total.labelled)}% "
               f"({total.full_right}/{total.labelled}), generic alone {_pct(total.generic_right, total.labelled)}% "
               f"({total.generic_right}/{total.labelled})")
    return "\n".join(out), total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--wrong", action="store_true", help="list the labelled lines the whole ingest got wrong")
    args = ap.parse_args()
    if not (args.data / "wazuh-tests").is_dir():
        sys.exit(f"wazuh-tests not found under {args.data}")
    text, total = table(measure(args.data, load_labels(args.labels)))
    print(text)
    if args.wrong:
        print("\n".join(total.wrong))


if __name__ == "__main__":
    main()
