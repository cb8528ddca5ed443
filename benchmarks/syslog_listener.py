"""Throughput of the syslog listener on loopback: messages/s received over TCP and UDP.

    python benchmarks/syslog_listener.py [--messages 200000] [--connections 4]
                                         [--udp-rates 50000,100000,150000]

TCP: ``--connections`` clients each send their share as fast as they can (half newline framed,
half octet counted); the figure is messages delivered to ``on_batch`` per second, from the first
byte sent to the last record delivered. UDP: one client process sends datagrams as fast as it can, then
again paced to a fixed rate; the figures are the rate reached and how many arrived (loopback UDP
drops whatever the receiving process cannot keep up with; the kernel counts them in
/proc/net/snmp ``RcvbufErrors``). Everything stays on 127.0.0.1, bounded in count and time.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from multiprocessing import Process, Queue

from soc.ingest import Record
from soc.ingest.sources import SyslogListener

MESSAGE = b"<86>Mar 27 13:06:56 ip-10-77-20-248 sshd[1291]: Accepted publickey for ubuntu from 85.245.107.41 port 54259 ssh2: RSA SHA256:Kl8kPGZrTiz7g4FO1hyqHdsSBBb5Fge6NWOobN03XJg %08d"


class Counter:
    def __init__(self) -> None:
        self.n = 0
        self.last = 0.0
        self.cond = threading.Condition()

    def __call__(self, batch: list[Record]) -> None:
        with self.cond:
            self.n += len(batch)
            self.last = time.perf_counter()
            self.cond.notify_all()

    def wait(self, n: int, timeout: float) -> int:
        with self.cond:
            self.cond.wait_for(lambda: self.n >= n, timeout)
            return self.n


def bench_tcp(total: int, connections: int) -> None:
    counter = Counter()
    lst = SyslogListener(counter, tcp="127.0.0.1:0", batch_delay=0.05)
    lst.start()
    per = total // connections
    payloads = []
    for c in range(connections):
        parts = []
        for i in range(per):
            msg = MESSAGE % (c * per + i)
            parts.append(b"%d %s" % (len(msg), msg) if i % 2 else msg + b"\n")
        payloads.append(b"".join(parts))

    def send(data: bytes) -> None:
        assert lst.tcp_address is not None
        with socket.create_connection(lst.tcp_address) as sock:
            sock.sendall(data)

    threads = [threading.Thread(target=send, args=(p,)) for p in payloads]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = counter.wait(per * connections, timeout=120)
    elapsed = counter.last - start
    lst.stop()
    mb = sum(len(p) for p in payloads) / 1e6
    print(f"tcp  {connections} connections: {got:,} of {per * connections:,} messages in "
          f"{elapsed:.2f} s = {got / elapsed:,.0f} msg/s ({mb / elapsed:.1f} MB/s)")


def _udp_sender(addr: tuple[str, int], total: int, rate: float | None, out: Queue) -> None:
    start = time.perf_counter()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(total):
            sock.sendto(MESSAGE % i, addr)
            if rate and i % 100 == 99:
                ahead = (i + 1) / rate - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)
    out.put(time.perf_counter() - start)


def bench_udp(total: int, rate: float | None) -> None:
    counter = Counter()
    lst = SyslogListener(counter, udp="127.0.0.1:0", batch_delay=0.05)
    lst.start()
    results: Queue = Queue()
    sender = Process(target=_udp_sender, args=(lst.udp_address, total, rate, results))
    start = time.perf_counter()
    sender.start()  # another process, so that the sender does not share our GIL
    sender.join()
    sent_in = results.get()
    got = counter.wait(total, timeout=10)
    elapsed = max(counter.last - start, sent_in)
    lst.stop()
    label = f"paced at {rate:,.0f}/s" if rate else "as fast as possible"
    print(f"udp  {label}: sent {total:,} in {sent_in:.2f} s ({total / sent_in:,.0f}/s), "
          f"received {got:,} ({100 * got / total:.2f}%) = {got / elapsed:,.0f} msg/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--udp-rates", default="50000,100000,150000",
                        help="comma-separated paced UDP rates (datagrams/s) to try")
    args = parser.parse_args()
    bench_tcp(args.messages, 1)
    bench_tcp(args.messages, args.connections)
    bench_udp(args.messages, None)
    for rate in args.udp_rates.split(","):
        bench_udp(args.messages, float(rate))


if __name__ == "__main__":
    main()
