"""``soc run`` starts every source type the schema accepts: one source of each -- syslog (UDP and
TCP), inbox, tail, file, evtx and kafka (the session's real Kafka broker) -- and each one's events
are stored in the SQLite store with the source's name and agency (and ``log.file.path`` for the
file sources), exactly once; the Kafka source commits its offsets once the records are stored."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from soc.app import App
from soc.service import run_service
from tests.conftest import shared
from tests.service_helpers import RULES, stored_events, workspace
from tests.test_kafka_support import create_topic, produce

pytestmark = [pytest.mark.kafka]

AUTH_LOG = ("elastic-examples", "suspicious_login_activity", "data", "auth.log")
AGENCIES = [{"id": f"a-{kind}", "name": f"Agency {kind}", "level": "district",
             **({"networks": ["127.0.0.0/8"]} if kind == "syslog" else {})}
            for kind in ("syslog", "inbox", "tail", "file", "evtx", "kafka")]


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(condition, what: str, timeout: float = 120.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


@pytest.mark.timeout(300)
def test_every_source_type_is_started_and_stores_its_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           kafka_bootstrap: str, unique_name: str) -> None:
    lines = [ln for ln in shared(*AUTH_LOG).read_bytes().splitlines() if ln.strip()]
    udp_port, tcp_port = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    tail_file, exports, share = tmp_path / "tail" / "app.log", tmp_path / "exports", tmp_path / "share"
    for folder in (tail_file.parent, exports, share / "DC01"):
        folder.mkdir(parents=True)
    tail_file.write_bytes(b"\n".join(lines[:10]) + b"\n")
    (exports / "old-auth.log").write_bytes(b"\n".join(lines[10:110]) + b"\n")
    shutil.copyfile(shared("evtx", "Security_short_selected.evtx"), share / "DC01" / "Security.evtx")
    topic = unique_name
    create_topic(kafka_bootstrap, topic, 2)
    assert produce(kafka_bootstrap, topic, lines[200:220], key=None) == 20
    settings = workspace(tmp_path, monkeypatch, {
        "syslog.yml": {"name": "net", "type": "syslog", "agency": "by-network",
                       "listen_udp": f"127.0.0.1:{udp_port}", "listen_tcp": f"127.0.0.1:{tcp_port}"},
        "inbox.yml": {"name": "drop", "type": "inbox", "agency": "a-inbox"},
        "tail.yml": {"name": "app", "type": "tail", "path": str(tail_file), "agency": "a-tail"},
        "file.yml": {"name": "exports", "type": "file", "path": str(exports), "agency": "a-file"},
        "evtx.yml": {"name": "dc", "type": "evtx", "path": str(share), "agency": "a-evtx"},
        "kafka.yml": {"name": "shippers", "type": "kafka", "topic": topic, "bootstrap": kafka_bootstrap,
                      "group": f"{unique_name}-g", "agency": "a-kafka"},
    }, AGENCIES)
    settings.inbox.mkdir(parents=True)
    (settings.inbox / "dropped.log").write_bytes(b"\n".join(lines[300:350]) + b"\n")

    out: list[str] = []
    stop = threading.Event()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(run_service(App(settings, rule_dirs=RULES), stop=stop,
                                                                       out=lambda line: out.append(str(line)))))
    thread.start()
    try:
        _wait(lambda: any(line.startswith("running;") for line in out) or not thread.is_alive(), "the service")
        assert thread.is_alive(), out
        banner = "\n".join(out)
        assert f"listening on: syslog UDP 127.0.0.1:{udp_port} (this machine only); syslog TCP 127.0.0.1:{tcp_port}" \
            in banner
        for expected in (f"source syslog 'net': listening for syslog on UDP 127.0.0.1:{udp_port} (this machine only), TCP", "source inbox 'drop': drop log files into",
                         f"source tail 'app': following {tail_file}", f"source file 'exports': {exports}",
                         f"source evtx 'dc': {share}: watching for new and changed .evtx files",
                         f"source kafka 'shippers': consuming {topic} from {kafka_bootstrap}"):
            assert expected in banner, (expected, banner)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for line in lines[400:405]:
                udp.sendto(line, ("127.0.0.1", udp_port))
        with socket.create_connection(("127.0.0.1", tcp_port)) as tcp:
            tcp.sendall(b"".join(line + b"\n" for line in lines[405:410]))
        with open(tail_file, "ab") as fh:
            fh.write(b"\n".join(lines[10:15]) + b"\n")
        expected = {"net": 10, "drop": 50, "app": 15, "exports": 100, "dc": 7, "shippers": 20}

        def per_source() -> dict[str, int]:
            counts: dict[str, int] = {}
            for event in stored_events(settings):
                counts[event["soc.source"]] = counts.get(event["soc.source"], 0) + 1
            return counts

        _wait(lambda: per_source() == expected, f"{expected} stored (have {per_source()})")
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()

    events = stored_events(settings)
    agency = {"net": "a-syslog", "drop": "a-inbox", "app": "a-tail", "exports": "a-file", "dc": "a-evtx",
              "shippers": "a-kafka"}
    for event in events:
        assert event["organization.id"] == agency[event["soc.source"]], event
        assert event["organization.name"] == f"Agency {agency[event['soc.source']][2:]}"
    paths = {e["soc.source"]: e.get("log.file.path") for e in events}
    assert paths == {"net": None, "shippers": None, "app": str(tail_file),
                     "drop": str(settings.inbox.resolve() / "dropped.log"),
                     "exports": str((exports / "old-auth.log").resolve()),
                     "dc": str((share / "DC01" / "Security.evtx").resolve())}
    assert {e.get("log.source.address") for e in events if e["soc.source"] == "net"} == {"127.0.0.1"}
    assert len({e["_id"] for e in events}) == len(events) == 202  # nothing doubled
    assert (settings.inbox / "done" / "dropped.log").exists()
    assert {name: c["stored"] for name, c in result["sources"].items()} == expected
    done = [line for line in out if " done: " in line]
    assert {line.split(":", 1)[0] for line in done} == {"inbox 'drop'", "file 'exports'", "evtx 'dc'"}

    from soc.kafka.status import group_status

    status = group_status(kafka_bootstrap, f"{unique_name}-g", [topic])  # committed once stored
    assert status.fully_committed and status.lag == 0
    assert sum(p.end for p in status.partitions) == 20
