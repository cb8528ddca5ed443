"""Worker metrics: counters, a periodic JSON log line, and a Prometheus text endpoint.

Counters only grow (Prometheus ``counter`` semantics); ``lag`` and ``paused`` are gauges.
Consumer lag here is per assigned partition: the high watermark the broker reported in the
last fetch response minus the worker's *committed* offset -- what would be read again if the
worker died now. (``soc kafka status`` computes the group's lag from the broker instead, for
every partition, also when no worker runs.)
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from soc.net import listen_address

log = logging.getLogger("soc.kafka.metrics")


def _memory() -> dict[str, float]:
    """Current and peak resident memory of this process (Linux /proc; empty elsewhere)."""
    out = {}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    name = "rss_mib" if line.startswith("VmRSS") else "peak_rss_mib"
                    out[name] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


@dataclass
class WorkerMetrics:
    consumed: int = 0          # records taken from Kafka
    stored: int = 0            # documents created in the store
    existing: int = 0          # documents that were already there (redelivery after crash/rebalance)
    dead_letters: int = 0      # records published to the dead-letter topic
    retries: int = 0           # documents sent again after a retryable failure (429/5xx/timeout/down)
    store_failures: int = 0    # bulk writes that failed as a whole (store unreachable/refusing)
    batches: int = 0           # bulk writes that settled every document
    commits: int = 0           # offset commits
    rebalances: int = 0        # partition revocations seen
    dropped_on_revoke: int = 0  # parked records released at a revocation (the next owner re-reads them)
    paused: bool = False       # consumption paused for backpressure
    dead_by_reason: dict[str, int] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)  # "topic/partition" -> records
    started: float = field(default_factory=time.time)
    first_record_at: float | None = None  # wall clock of the first record taken
    last_commit_at: float | None = None   # wall clock of the last commit
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _rate_mark: tuple[float, int] = (0.0, 0)
    events_per_s: float = 0.0

    def dead(self, stage: str, n: int = 1) -> None:
        with self._lock:
            self.dead_letters += n
            self.dead_by_reason[stage] = self.dead_by_reason.get(stage, 0) + n

    def tick(self) -> None:
        """Update ``events_per_s`` (stored + existing per second since the last tick)."""
        now = time.monotonic()
        done = self.stored + self.existing
        last_t, last_done = self._rate_mark
        if last_t:
            self.events_per_s = round((done - last_done) / max(now - last_t, 1e-6), 1)
        self._rate_mark = (now, done)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "consumed": self.consumed, "stored": self.stored, "existing": self.existing,
                "dead_letters": self.dead_letters, "dead_letters_by_stage": dict(self.dead_by_reason),
                "retries": self.retries, "store_failures": self.store_failures, "batches": self.batches,
                "commits": self.commits, "rebalances": self.rebalances,
                "dropped_on_revoke": self.dropped_on_revoke, "paused": self.paused,
                "events_per_s": self.events_per_s, "lag": dict(self.lag),
                "lag_total": sum(self.lag.values()), "uptime_s": round(time.time() - self.started, 1),
                "first_record_at": self.first_record_at, "last_commit_at": self.last_commit_at,
                **_memory(),
            }

    def prometheus(self) -> str:
        s = self.snapshot()
        lines = []

        def metric(name: str, kind: str, help_: str, value: Any, labels: str = "") -> None:
            lines.append(f"# HELP soc_kafka_{name} {help_}")
            lines.append(f"# TYPE soc_kafka_{name} {kind}")
            lines.append(f"soc_kafka_{name}{labels} {value}")

        metric("records_consumed_total", "counter", "Records taken from Kafka.", s["consumed"])
        metric("events_stored_total", "counter", "Documents created in the store.", s["stored"])
        metric("events_existing_total", "counter", "Documents already stored (redelivered).", s["existing"])
        metric("dead_letters_total", "counter", "Records published to the dead-letter topic.", s["dead_letters"])
        metric("retries_total", "counter", "Documents retried after 429/5xx/timeouts/outages.", s["retries"])
        metric("store_failures_total", "counter", "Bulk writes that failed as a whole.", s["store_failures"])
        metric("commits_total", "counter", "Offset commits.", s["commits"])
        metric("rebalances_total", "counter", "Partition revocations.", s["rebalances"])
        metric("paused", "gauge", "1 while consumption is paused for backpressure.", int(s["paused"]))
        metric("events_per_second", "gauge", "Events written per second (last interval).", s["events_per_s"])
        lines.append("# HELP soc_kafka_consumer_lag Records behind the high watermark (committed offset).")
        lines.append("# TYPE soc_kafka_consumer_lag gauge")
        for tp, lag in sorted(s["lag"].items()):
            topic, _, partition = tp.rpartition("/")
            lines.append(f'soc_kafka_consumer_lag{{topic="{topic}",partition="{partition}"}} {lag}')
        return "\n".join(lines) + "\n"

    def log_line(self) -> str:
        return json.dumps({"metrics": "soc.kafka.worker", **self.snapshot()}, sort_keys=True)


class MetricsServer:
    """``GET /metrics`` (Prometheus text) and ``GET /metrics.json`` on a daemon thread.

    There is no authentication, so it binds the loopback address unless told otherwise
    (``kafka.metrics_host`` / ``--metrics-host``)."""

    def __init__(self, metrics: WorkerMetrics, port: int, host: str = "127.0.0.1") -> None:
        owner = metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (http.server API)
                if self.path.startswith("/metrics.json"):
                    body, kind = json.dumps(owner.snapshot()).encode(), "application/json"
                elif self.path.startswith("/metrics"):
                    body, kind = owner.prometheus().encode(), "text/plain; version=0.0.4"
                else:
                    self.send_error(404, "try /metrics or /metrics.json")
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server_class = ThreadingHTTPServer
        if ":" in host:  # IPv6
            server_class = type("ThreadingHTTPServerV6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
        self.server = server_class((host.strip("[]"), port), Handler)
        self.host = str(self.server.server_address[0])
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="soc-kafka-metrics", daemon=True)

    def announce(self) -> None:
        """Log where the endpoint listens: info on loopback, a warning when others can reach it."""
        where = listen_address(self.host, self.port)
        if ipaddress.ip_address(self.host).is_loopback:
            log.info("metrics listen on %s: GET /metrics, /metrics.json (set kafka.metrics_host or "
                     "--metrics-host to serve them to other machines)", where)
        else:
            log.warning("metrics listen on %s: GET /metrics, /metrics.json, WITHOUT authentication: "
                        "anyone who reaches this port can read them (firewall it)", where)

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
