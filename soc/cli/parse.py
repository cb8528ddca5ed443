"""``soc parse``: how the ingest reads a line -- which parser, program extractor, YAML decoder
(``ingest/decoders``) or the generic extraction applied, and which fields came out.

For the IT team writing a decoder for a new device: paste a line (or pipe a file) and see
whether the decoder matches and what it extracts, before any log is sent. Lines come from the
arguments, or from ``--file PATH`` (``-`` is stdin). Log text is attacker-controlled, so every
value is printed through :func:`soc.ui.literal` (control and bidi characters escaped, no markup).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from soc.cli.common import fail
from soc.clock import system_clock
from soc.ingest.decoders import DecoderError, default_decoders
from soc.ingest.normalize import infer_year
from soc.ingest.parsers import PARSERS
from soc.ingest.parsers import parse as parse_line
from soc.ui import json_text, literal

__all__ = ["parse"]

_MAX_LINES = 100_000


def _lines(lines: list[str], file: str | None) -> list[str]:
    out = list(lines)
    if file is not None:
        if file == "-":
            data = sys.stdin.buffer.read()
        else:
            try:
                data = Path(file).read_bytes()
            except OSError as exc:
                fail(f"cannot read {file}: {exc.strerror or exc}")
        out.extend(line for line in data.decode("utf-8", "replace").splitlines() if line.strip())
    return out[:_MAX_LINES]


def _explain(number: int, line: str, fmt: str) -> list[str]:
    parsed = parse_line(line, fmt)
    fields = parsed.fields
    out = [f"line {number}: {literal(line)}",
           f"  parser:  {literal(fields.get('soc.parse.parser', fmt))} ({parsed.status}"
           + (f": {literal(parsed.error)}" if parsed.error else "") + ")"]
    if fields.get("process.name"):
        out.append(f"  program: {literal(fields['process.name'])}")
    name = fields.get("soc.parse.decoder")
    if name:
        decoder = next((d for d in default_decoders().decoders if d.name == name), None)
        where = f" ({decoder.file}: {decoder.vendor} {decoder.product}; written from {decoder.source})" if decoder else ""
        out.append(f"  decoder: {literal(name)}{literal(where)}")
    else:
        out.append("  decoder: none matched")
    out.append("  generic: " + ("yes (roles inferred from the words around the addresses)"
                                if fields.get("soc.parse.generic") else "no"))
    if parsed.timestamp is not None:
        out.append(f"  time:    {_time(parsed.timestamp, parsed.year_missing)} (from {literal(parsed.raw_time)!s})")
    out.append("  fields:")
    for key in sorted(fields):
        if key in ("message",) or key.startswith("soc.parse."):
            continue
        out.append(f"    {literal(key)} = {literal(_value(fields[key]))}")
    return out


def _time(stamp: datetime, year_missing: bool) -> str:
    """The event time as found; a stamp without a year gets the year the ingest would give it
    if the line arrived now (it infers the year from the receive time), and says so."""
    notes = []
    if year_missing:
        now = system_clock()
        stamp = infer_year(stamp, now.astimezone(stamp.tzinfo).replace(tzinfo=stamp.tzinfo) if stamp.tzinfo
                           else now.astimezone().replace(tzinfo=None))
        notes.append("no year in the line: taken from the receive time, here now")
    if stamp.tzinfo is None:
        notes.append("no zone in the line: the source's zone applies")
    return stamp.isoformat() + (f" [{'; '.join(notes)}]" if notes else "")


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def parse(
    lines: Annotated[list[str] | None, typer.Argument(help="Log lines (quote each one).")] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", help="Read lines from this file (- for stdin).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Say which parser, decoder or generic extraction applied.")] = False,
    fmt: Annotated[str, typer.Option("--format", help=f"auto or one of: {', '.join(PARSERS)}.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object of fields per line.")] = False,
) -> None:
    """Parse log lines as the ingest would and show the fields (--explain: and which parser,
    device decoder or generic extraction produced them)."""
    if fmt != "auto" and fmt not in PARSERS:
        fail(f"unknown format {fmt!r}: use auto or one of {', '.join(PARSERS)}")
    try:
        default_decoders()
    except DecoderError as exc:
        fail(f"a decoder in ingest/decoders is broken: {exc}")
    texts = _lines(lines or [], file)
    if not texts:
        fail("no lines: give them as arguments or with --file PATH (- for stdin)")
    for number, line in enumerate(texts, 1):
        if as_json:
            parsed = parse_line(line, fmt)
            doc = {"status": parsed.status, "error": parsed.error, "fields": parsed.fields}
            typer.echo(json_text(doc, default=str))
        elif explain:
            typer.echo("\n".join(_explain(number, line, fmt)))
        else:
            fields = parse_line(line, fmt).fields
            typer.echo(f"line {number}: " + " ".join(f"{literal(k)}={literal(_value(v))}" for k, v in sorted(fields.items())
                                                    if k != "message" and not k.startswith("soc.parse.")))
