"""The YAML device decoders (``ingest/decoders/*.yml``, :mod:`soc.ingest.decoders`) and ``soc parse``.

Every sample line of every decoder file is a test case: the decoder alone must match the line
and produce the sample's fields, and the whole ingest parse (parsers, program extractors,
decoders, generic fallback) must put the sample's addresses in the same role fields -- so a
decoder the IT team adds is tested by writing its samples, and a parser change that steals a
device's lines with other roles is caught.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from soc.cli.main import app
from soc.ingest.decoders import Decoder, DecoderError, default_decoders, load_decoders
from soc.ingest.parsers import parse

FOLDER = Path(__file__).resolve().parent.parent / "ingest" / "decoders"
DECODERS = default_decoders().decoders
SAMPLES = [(d, i, s) for d in DECODERS for i, s in enumerate(d.samples)]


def _same(got: object, want: object) -> bool:
    if isinstance(want, list):
        return got == want
    return str(got).lower() == str(want).lower()


@pytest.mark.parametrize(("decoder", "index", "sample"), SAMPLES, ids=[f"{d.name}-{i}" for d, i, _ in SAMPLES])
def test_sample(decoder: Decoder, index: int, sample: dict) -> None:
    full = parse(sample["line"]).fields
    alone: dict = {}
    program = full.get("process.name")
    matched = decoder.decode(program, full.get("message") or sample["line"], alone) or \
        decoder.decode(program, sample["line"], alone)
    assert matched, f"{decoder.name} does not match its sample {index}"
    expected = sample.get("fields") or {}
    assert expected, f"{decoder.name} sample {index} lists no fields"
    for key, want in expected.items():
        assert _same(alone.get(key), want), f"{decoder.name} sample {index}: {key} = {alone.get(key)!r}, want {want!r}"
        if key.endswith(".ip"):  # the whole ingest agrees on where each address belongs
            assert _same(full.get(key), want), f"ingest of {decoder.name} sample {index}: {key} = {full.get(key)!r}"
    assert alone["soc.parse.decoder"] == decoder.name
    assert alone["observer.vendor"] == decoder.vendor


def test_the_vendors_of_the_issue_have_decoders_that_cite_their_documentation() -> None:
    vendors = {d.vendor for d in DECODERS}
    for vendor in ("Palo Alto Networks", "Cisco", "Check Point", "Sophos", "Netgate", "MikroTik", "Huawei",
                   "Juniper Networks", "Zyxel", "DrayTek", "Kerio", "Postfix", "Exim", "Dovecot", "Microsoft",
                   "Synacor", "ISC", "Squid", "vsftpd", "ProFTPD", "OWASP"):
        assert vendor in vendors
    for path in sorted(FOLDER.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert doc["source"], path.name
        assert "Written from" in path.read_text(encoding="utf-8"), f"{path.name}: the header says which document"
    assert all(d.samples for d in DECODERS), [d.name for d in DECODERS if not d.samples]
    assert len({d.name for d in DECODERS}) == len(DECODERS)


def test_a_decoder_added_as_data_is_used_by_the_ingest(tmp_path: Path) -> None:
    (tmp_path / "acme.yml").write_text(
        'source: "ACME Gateway Log Guide"\nvendor: ACME\nproduct: GW\ndataset: firewall.device\n'
        "decoders:\n  - name: acme-conn\n    programs: [acmegw]\n    prefilter: CONN\n"
        "    match: 'CONN %{WORD:event.action} %{IP:source.ip}:%{PORT:source.port} > %{IP:destination.ip}'\n"
        "    samples: [{line: 'x', fields: {source.ip: 1.2.3.4}}]\n", encoding="utf-8")
    decoders = load_decoders(tmp_path)
    fields: dict = {}
    assert decoders.decode("acmegw", "CONN DENY 10.0.0.1:5000 > 10.0.0.2", fields) is not None
    assert (fields["source.ip"], fields["source.port"], fields["destination.ip"]) == ("10.0.0.1", 5000, "10.0.0.2")
    assert fields["event.action"] == "deny" and fields["event.type"] == ["connection", "denied"]
    assert fields["event.dataset"] == "firewall.device" and fields["soc.parse.decoder"] == "acme-conn"
    assert decoders.decode("otherprog", "CONN DENY 10.0.0.1:5000 > 10.0.0.2", {}) is None  # program filter
    not_ip: dict = {}
    decoders.decode("acmegw", "CONN DENY 10.0.0.1:5000 > 999.1.1.1", not_ip)
    assert "destination.ip" not in not_ip  # *.ip holds addresses only


@pytest.mark.parametrize(("text", "error"), [
    ("vendor: X\ndecoders: []\n", "source"),
    ('source: "d"\ndecoders:\n  - name: a\n    match: "%{NOPE:x}"\n', "unknown pattern"),
    ('source: "d"\ndecoders:\n  - name: a\n    match: "(unclosed"\n', "not a valid regex"),
    ('source: "d"\ndecoders:\n  - {name: a, match: x}\n  - {name: a, match: y}\n', "used twice"),
    ('source: "d"\ndataset: no.such\ndecoders:\n  - {name: a, match: x}\n', "datasets.yml"),
    ('source: "d"\ndecoders:\n  - {name: a, match: x, matsh: y}\n', "unknown keys"),
    ("decoders: [\n", "not valid YAML"),
])
def test_a_broken_decoder_file_is_refused_with_the_reason(tmp_path: Path, text: str, error: str) -> None:
    (tmp_path / "bad.yml").write_text(text, encoding="utf-8")
    with pytest.raises(DecoderError, match=error):
        load_decoders(tmp_path)


def test_soc_parse_explain_names_the_decoder_and_prints_log_text_literally() -> None:
    line = "Aug 15 10:12:01 fw1 filterlog[1]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,1,0,none,6,tcp,60,203.0.113.5,192.168.1.10,51234,22,0,S"
    result = CliRunner().invoke(app, ["parse", "--explain", line])
    assert result.exit_code == 0, result.output
    assert "decoder: pfsense-filterlog-ipv4 (pfsense.yml" in result.output
    assert "source.ip = 203.0.113.5" in result.output and "destination.port = 22" in result.output
    hostile = "Aug 15 10:12:01 box app[1]: login from 10.9.8.7 user=\x1b[31mred[/bold]"
    result = CliRunner().invoke(app, ["parse", "--explain", hostile])
    assert result.exit_code == 0
    assert "\x1b" not in result.output and "\\x1b[31mred[/bold]" in result.output
    assert "generic: yes" in result.output and "source.ip = 10.9.8.7" in result.output


def test_soc_parse_explain_gives_a_year_less_stamp_the_year_the_ingest_would() -> None:
    """Not the parser's provisional year 2000: the year inferred from the receive time (now)."""
    result = CliRunner().invoke(app, ["parse", "--explain", "Aug 15 10:12:01 box app[1]: hello"])
    assert result.exit_code == 0, result.output
    time_line = next(line for line in result.output.splitlines() if line.strip().startswith("time:"))
    year = int(time_line.split("time:")[1].strip()[:4])
    assert abs(year - datetime.now().year) <= 1 and "no year in the line" in time_line, time_line
    assert "the source's zone applies" in time_line


def test_soc_parse_reads_a_file_and_prints_json(tmp_path: Path) -> None:
    path = tmp_path / "lines.log"
    path.write_text("Aug 15 10:12:01 ns1 named[1]: client @0x7f1 10.0.0.15#5123 (a.vn): query: a.vn IN A + (10.0.0.53)\n\n",
                    encoding="utf-8")
    result = CliRunner().invoke(app, ["parse", "--json", "--file", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1 and '"soc.parse.decoder": "bind-query"' in result.output
    assert CliRunner().invoke(app, ["parse"]).exit_code == 2


def test_a_broken_decoder_file_does_not_stop_the_ingest(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    from soc.ingest import decoders

    def broken() -> None:
        raise DecoderError("bad.yml: a decoder file holds a 'decoders' list")

    monkeypatch.setattr(decoders, "_INGEST_DECODERS", [])
    monkeypatch.setattr(decoders, "default_decoders", broken)
    parsed = parse("Aug 15 10:12:01 fw1 filterlog[1]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,1,0,none,6,tcp,60,"
                   "203.0.113.5,192.168.1.10,51234,22,0,S")
    assert parsed.status == "parsed" and "soc.parse.decoder" not in parsed.fields
    assert parsed.fields["source.ip"] == "203.0.113.5" and parsed.fields["soc.parse.generic"] is True
    assert "device decoders not used: bad.yml" in caplog.text
