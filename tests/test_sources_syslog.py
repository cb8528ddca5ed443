"""Syslog listeners (soc.ingest.sources.syslog) over real sockets on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from soc.ingest import Record
from soc.ingest.sources import SyslogListener, server_tls_context, truncated_size
from soc.model import stream_event_id


class Collector:
    """on_batch target: remembers records, batch sizes and the calling threads."""

    def __init__(self, delay: float = 0.0) -> None:
        self.records: list[Record] = []
        self.batches: list[int] = []
        self.threads: set[int] = set()
        self.delay = delay
        self.cond = threading.Condition()

    def __call__(self, batch: list[Record]) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self.cond:
            self.records.extend(batch)
            self.batches.append(len(batch))
            self.threads.add(threading.get_ident())
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = 20.0) -> list[Record]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.records) >= n, timeout)
            return list(self.records)


def listener(collector: Collector, **kwargs) -> SyslogListener:
    kwargs.setdefault("batch_delay", 0.05)
    lst = SyslogListener(collector, **kwargs)
    lst.start()
    return lst


def tcp_client(lst: SyslogListener) -> socket.socket:
    assert lst.tcp_address is not None
    sock = socket.create_connection(lst.tcp_address, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def test_mixed_framing_on_one_connection_byte_by_byte() -> None:
    got = Collector()
    lst = listener(got, tcp="127.0.0.1:0")
    try:
        msgs = [b"<13>Jan  1 00:00:00 host app: newline framed",
                b"<14>1 2024-01-01T00:00:00Z host app - - - octet\ncounted",
                b"<15>Jan  1 00:00:01 host app: crlf framed"]
        stream = msgs[0] + b"\n" + b"%d " % len(msgs[1]) + msgs[1] + msgs[2] + b"\r\n"
        with tcp_client(lst) as sock:
            for i in range(len(stream)):
                sock.sendall(stream[i : i + 1])
                if i % 16 == 0:
                    time.sleep(0.001)  # let segments really go out one by one
            records = got.wait_for(3)
    finally:
        lst.stop()
    assert [r.raw for r in records] == msgs
    assert all(r.peer == "127.0.0.1" and r.origin.startswith("tcp 127.0.0.1:") for r in records)
    assert [r.event_id for r in records] == [
        stream_event_id("syslog", lst.boot_id, i + 1, m) for i, m in enumerate(msgs)]
    assert lst.counters.bytes == len(stream)


def test_ten_thousand_udp_datagrams_no_loss() -> None:
    got = Collector()
    lst = listener(got, udp="127.0.0.1:0", batch_size=1000)
    n = 10_000
    try:
        def send() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for i in range(n):
                    sock.sendto(b"<13>Jan  1 00:00:00 host app: message %05d\n" % i, lst.udp_address)
                    if i % 200 == 199:  # moderate rate: ~100k/s bursts, then a breath
                        time.sleep(0.002)

        sender = threading.Thread(target=send)
        sender.start()
        sender.join()
        records = got.wait_for(n)
    finally:
        lst.stop()
    assert len(records) == n
    assert sorted(r.raw for r in records) == [
        b"<13>Jan  1 00:00:00 host app: message %05d" % i for i in range(n)]
    assert len({r.event_id for r in records}) == n
    assert max(got.batches) <= 1000 and len(got.threads) == 1
    assert lst.counters.received == n and not lst.counters.dropped


def test_concurrent_tcp_clients_keep_per_connection_order() -> None:
    got = Collector()
    lst = listener(got, tcp="127.0.0.1:0", batch_size=500)
    clients, per_client = 20, 500
    try:
        def client(c: int) -> None:
            with tcp_client(lst) as sock:
                for i in range(per_client):
                    msg = b"<13>client %02d message %04d" % (c, i)
                    sock.sendall(b"%d %s" % (len(msg), msg) if i % 2 else msg + b"\n")

        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        records = got.wait_for(clients * per_client)
    finally:
        lst.stop()
    assert len(records) == clients * per_client
    by_client: dict[bytes, list[int]] = {}
    for r in records:
        parts = r.raw.split()
        by_client.setdefault(parts[1], []).append(int(parts[3]))
    assert len(by_client) == clients
    assert all(seq == list(range(per_client)) for seq in by_client.values())
    assert lst.counters.connections_total == clients
    assert lst.counters.connections_open == 0
    assert len(got.threads) == 1


def test_oversized_messages_are_truncated_and_counted() -> None:
    got = Collector()
    lst = listener(got, tcp="127.0.0.1:0", udp="127.0.0.1:0", max_frame_bytes=100)
    big = b"<13>" + b"x" * 996
    try:
        with tcp_client(lst) as sock:
            sock.sendall(big + b"\n" + b"1000 " + big + b"<13>small\n")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(big, lst.udp_address)
        records = got.wait_for(4)
    finally:
        lst.stop()
    cut = [r for r in records if truncated_size(r)]
    assert len(cut) == 3 and all(truncated_size(r) == (100, 1000) for r in cut)
    assert all(r.raw == big[:100] for r in cut)
    assert [r.raw for r in records if not truncated_size(r)] == [b"<13>small"]
    assert lst.counters.truncated == {"too_long": 3}


def test_batches_close_on_size_and_on_time() -> None:
    got = Collector()
    lst = listener(got, tcp="127.0.0.1:0", batch_size=100, batch_delay=0.2)
    try:
        with tcp_client(lst) as sock:
            sock.sendall(b"".join(b"<13>m %d\n" % i for i in range(250)))
            got.wait_for(200)
            assert got.batches[:2] == [100, 100]
            started = time.monotonic()
            got.wait_for(250, timeout=5)
            assert got.batches[2] == 50 and time.monotonic() - started < 1.0
    finally:
        lst.stop()


def test_idle_connections_are_closed_and_flushed() -> None:
    got = Collector()
    lst = listener(got, tcp="127.0.0.1:0", idle_timeout=0.3)
    try:
        with tcp_client(lst) as sock:
            sock.sendall(b"<13>complete\n<13>no newline yet")
            records = got.wait_for(2, timeout=5)
            assert sock.recv(10) == b""  # the listener closed the connection
        assert [r.raw for r in records] == [b"<13>complete", b"<13>no newline yet"]
        assert lst.counters.idle_closed == 1
    finally:
        lst.stop()


def test_stop_flushes_pending_data() -> None:
    got = Collector()
    lst = listener(got, tcp="127.0.0.1:0", batch_delay=60, batch_size=10_000)
    sock = tcp_client(lst)
    sock.sendall(b"<13>one\n<13>two\n<13>unterminated")
    time.sleep(0.2)
    assert got.records == []  # waiting for a full batch or the (long) delay
    lst.stop()
    sock.close()
    assert [r.raw for r in got.records] == [b"<13>one", b"<13>two", b"<13>unterminated"]


def test_slow_consumer_backpressure_loses_nothing_over_tcp() -> None:
    got = Collector(delay=0.02)
    lst = listener(got, tcp="127.0.0.1:0", batch_size=50, max_pending_batches=2)
    n = 3000
    try:
        with tcp_client(lst) as sock:
            sock.sendall(b"".join(b"<13>msg %d\n" % i for i in range(n)))
        records = got.wait_for(n, timeout=30)
    finally:
        lst.stop()
    assert [r.raw for r in records] == [b"<13>msg %d" % i for i in range(n)]
    assert not lst.counters.dropped
    assert lst.counters.paused > 0  # reading was paused, not buffered without bound


def test_from_settings_keeps_frames_above_the_pipeline_limit() -> None:
    from soc.config import SyslogSettings

    lst = SyslogListener.from_settings(
        SyslogSettings(udp="127.0.0.1:0", tcp=None, max_message_bytes=1000), lambda b: None)
    assert lst.max_frame_bytes == 4000 and lst.tcp is None and lst.udp == ("127.0.0.1", 0)


def test_bind_failure_names_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        lst = SyslogListener(lambda b: None, tcp=f"127.0.0.1:{port}")
        with pytest.raises(OSError, match=f"tcp 127.0.0.1:{port}"):
            lst.start()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_rfc5425(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    got = Collector()
    lst = listener(got, tcp="127.0.0.1:0", ssl_context=server_tls_context(cert, key))
    client_ctx = ssl.create_default_context(cafile=str(cert))
    msgs = [b"<13>1 2024-01-01T00:00:00Z host app - - - over tls %d" % i for i in range(100)]
    try:
        assert lst.tcp_address is not None
        with socket.create_connection(lst.tcp_address) as raw_sock, \
                client_ctx.wrap_socket(raw_sock, server_hostname="localhost") as sock:
            sock.sendall(b"".join(b"%d %s" % (len(m), m) for m in msgs))
            records = got.wait_for(100)
    finally:
        lst.stop()
    assert [r.raw for r in records] == msgs
    assert records[0].origin.startswith("tls 127.0.0.1:")
