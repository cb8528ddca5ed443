"""Dump (or compare) the stored event dicts of the real shared data, to prove that a change to
the ingest stages (:mod:`soc.ingest`) changes no output.

Usage::

    python benchmarks/ingest_golden.py dump /tmp/golden.jsonl     # before the change
    python benchmarks/ingest_golden.py compare /tmp/golden.jsonl  # after: exit 1 on any difference
    python benchmarks/ingest_golden.py dump /tmp/g2.jsonl --received 2026-12-14T03:00:00+00:00

Every class of ``benchmarks/parse.py`` (with its format), every line of every Wazuh test
``.ini`` (format ``auto``, as the device coverage measures them) and the first
``--per-archive`` events of every OTRF Windows archive (format ``json``) go through
:class:`soc.ingest.pipeline.IngestPipeline` with one fixed receive time, and each event is
written as one sorted JSON line. Speed work is only safe when ``compare`` says nothing changed.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from soc.ingest import Record  # noqa: E402
from soc.ingest.normalize import SourceContext  # noqa: E402
from soc.ingest.pipeline import IngestPipeline  # noqa: E402

RECEIVED = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


def _bench_parse():
    spec = importlib.util.spec_from_file_location("bench_parse", ROOT / "benchmarks" / "parse.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def corpus(per_archive: int) -> Iterator[tuple[str, str, list[bytes]]]:
    """(name, format, raw records) of every class."""
    bench = _bench_parse()
    for name, fmt, load in bench.CLASSES:
        yield name, fmt, load()
    wazuh = bench.DATA / "wazuh-tests"
    for ini in sorted(wazuh.glob("*.ini")):
        yield f"wazuh {ini.stem}", "auto", bench._wazuh(ini.stem)()
    for archive in sorted((bench.DATA / "otrf/datasets/atomic/windows").glob("*/host/*.zip")):
        raws: list[bytes] = []
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                if member.endswith("/"):
                    continue
                with z.open(member) as f:
                    for line in io.BufferedReader(f):  # type: ignore[arg-type]
                        line = line.strip()
                        if line:
                            raws.append(line)
                        if len(raws) >= per_archive:
                            break
                break
        yield f"otrf {archive.name}", "json", raws


def events(per_archive: int, received: datetime = RECEIVED) -> Iterator[bytes]:
    for name, fmt, raws in corpus(per_archive):
        pipeline = IngestPipeline(SourceContext(source="golden"), fmt=fmt)
        records = [Record(raw=r, event_id=f"{name}:{i}", received=received, origin="golden") for i, r in enumerate(raws)]
        for event in pipeline.process(records):
            yield orjson.dumps(event, option=orjson.OPT_SORT_KEYS, default=str)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["dump", "compare"])
    ap.add_argument("path", type=Path)
    ap.add_argument("--per-archive", type=int, default=1500, help="events read from each OTRF Windows archive")
    ap.add_argument("--received", type=datetime.fromisoformat, default=RECEIVED,
                    help="the receive time of every record (ISO 8601 with offset; year-less stamps depend on it)")
    args = ap.parse_args()
    if args.action == "dump":
        n = 0
        with args.path.open("wb") as out:
            for line in events(args.per_archive, args.received):
                out.write(line + b"\n")
                n += 1
        print(f"{n} events written to {args.path}")
        return
    golden = args.path.read_bytes().splitlines()
    now = list(events(args.per_archive, args.received))
    differ = [i for i, (a, b) in enumerate(zip(golden, now, strict=False)) if a != b]
    print(f"{len(now)} events now, {len(golden)} in {args.path}; {len(differ)} differ")
    for i in differ[:5]:
        print("-", golden[i][:2000].decode())
        print("+", now[i][:2000].decode())
    if differ or len(now) != len(golden):
        sys.exit(1)


if __name__ == "__main__":
    main()
