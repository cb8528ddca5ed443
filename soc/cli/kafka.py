"""``soc kafka ...``: the Kafka ingest path on the command line (worker, relay, status, dlq).

Mounted as ``soc kafka`` (also ``python -m soc.cli kafka ...``).
Defaults come from settings (``SOC_KAFKA__BOOTSTRAP``, ``SOC_KAFKA__TOPIC``, ``SOC_STORE_URL``...,
see :class:`soc.config.KafkaSettings`); options override them. docs/kafka.md explains the
topic layout, the commit rule, the dead-letter format and scaling.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from typing import Annotated

import typer

from soc.cli.common import fail
from soc.config import Settings, load_settings
from soc.config_security import KafkaSecurityError
from soc.secrets import SecretError, redact_logs, warn_password_option

app = typer.Typer(
    help="Kafka ingest at scale: workers that store log records from Kafka (exactly-once outcome), "
         "a syslog-to-Kafka relay, group lag, and the dead-letter topic. See docs/kafka.md.",
    no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False)
dlq_app = typer.Typer(help="Inspect and replay the dead-letter topic (records the worker could not store).",
                      no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

Bootstrap = Annotated[str | None, typer.Option(
    "--bootstrap", "-b", help="Kafka bootstrap servers host:port[,host:port] (default SOC_KAFKA__BOOTSTRAP).",
    show_default=False)]
Topic = Annotated[str | None, typer.Option("--topic", "-t", help="Log topic (default SOC_KAFKA__TOPIC, soc.logs).",
                                           show_default=False)]
Group = Annotated[str | None, typer.Option("--group", "-g", help="Consumer group (default SOC_KAFKA__GROUP, "
                                           "soc-ingest). Workers of one group share the partitions.",
                                           show_default=False)]
DeadTopic = Annotated[str | None, typer.Option("--dead-letter-topic", help="Dead-letter topic (default "
                                               "SOC_KAFKA__DEAD_LETTER_TOPIC, soc.logs.dlq).", show_default=False)]
StoreUrl = Annotated[str | None, typer.Option("--store-url", help="Where events go: opensearch://host:9200, "
                                              "elasticsearch+https://USER@host:9200 or sqlite:///path.db "
                                              "(default SOC_STORE_URL); the password comes from "
                                              "store_password_file/_env (SOC_STORE_PASSWORD_FILE...), not "
                                              "the command line.", show_default=False)]
Prefix = Annotated[str | None, typer.Option("--index-prefix", help="Index prefix of a search store (default "
                                            "soc).", show_default=False)]
Replicas = Annotated[int | None, typer.Option("--replicas", help="Replicas of new event indices (default: the "
                                              "cluster's; use 0 on a single node).", show_default=False)]
MaxBytes = Annotated[int | None, typer.Option("--max-message-bytes", help="Records longer than this are "
                                              "dead-lettered (default 65536).", show_default=False)]
InvalidUtf8 = Annotated[str | None, typer.Option("--invalid-utf8", help="Records that are not UTF-8: "
                                                 "'dead-letter' (default) or 'store' (kept with soc.raw_b64).",
                                                 show_default=False)]


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("soc.kafka").setLevel(logging.INFO)
    logging.getLogger("kafka").setLevel(logging.WARNING if verbose else logging.ERROR)
    redact_logs()  # URL passwords; the settings' secret values are added by _config


def _kafka_unreachable() -> tuple[type[Exception], ...]:
    """What kafka-python raises when no broker answers (3.x: a bootstrap timeout)."""
    from kafka import errors

    return tuple(getattr(errors, name) for name in ("NoBrokersAvailable", "KafkaTimeoutError",
                                                     "KafkaConnectionError") if hasattr(errors, name))


def _security(settings: Settings, bootstrap: str) -> dict[str, object]:
    """The Kafka clients' TLS/SASL options from the settings (exits with the reason when a
    password file is missing or SASL PLAIN would go out in clear text)."""
    from soc.kafka.config import security_options

    redact_logs(settings.secret_values())
    try:
        return security_options(settings.kafka, bootstrap)
    except (SecretError, KafkaSecurityError) as error:
        fail(str(error))


def _config(**overrides: object):  # type: ignore[no-untyped-def]
    from soc.kafka.worker import WorkerConfig

    if overrides.get("invalid_utf8") not in (None, "dead-letter", "store"):
        typer.echo("error: --invalid-utf8 must be 'dead-letter' or 'store'", err=True)
        raise typer.Exit(2)
    settings = load_settings()
    redact_logs(settings.secret_values())
    if overrides.get("store_url"):
        warn_password_option("--store-url", str(overrides["store_url"]))
    topic = overrides.pop("topic", None)
    try:
        config = WorkerConfig.from_settings(settings, **overrides)
    except (SecretError, KafkaSecurityError) as error:  # a password file missing, SASL PLAIN in clear text
        fail(str(error))
    if topic:
        config.topics = [str(topic)]
    return config


@app.command()
def worker(
    bootstrap: Bootstrap = None, topic: Topic = None, group: Group = None, store_url: StoreUrl = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Records per bulk write and commit "
                                                   "(default 5000).", show_default=False)] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Serve Prometheus text on "
                                                     "http://HOST:PORT/metrics (and JSON on /metrics.json), "
                                                     "no authentication (default SOC_KAFKA__METRICS_PORT: "
                                                     "off).", show_default=False)] = None,
    metrics_host: Annotated[str | None, typer.Option("--metrics-host", help="Address the metrics endpoint "
                                                     "binds (default SOC_KAFKA__METRICS_HOST, 127.0.0.1: "
                                                     "this machine only; 0.0.0.0 opens it to the network).",
                                                     show_default=False)] = None,
    metrics_interval: Annotated[float | None, typer.Option("--metrics-interval", help="Seconds between JSON "
                                                           "metrics log lines on stderr (default 30).",
                                                           show_default=False)] = None,
    dead_letter_topic: DeadTopic = None, index_prefix: Prefix = None, replicas: Replicas = None,
    max_message_bytes: MaxBytes = None, invalid_utf8: InvalidUtf8 = None,
    client_id: Annotated[str | None, typer.Option("--client-id", help="Kafka client id (shown in group "
                                                  "descriptions).", show_default=False)] = None,
    session_timeout_ms: Annotated[int | None, typer.Option("--session-timeout-ms", help="A worker that stops "
                                                           "heartbeating this long (killed, frozen) is replaced "
                                                           "in the group (default 45000; broker minimum 6000).",
                                                           show_default=False)] = None,
    until_idle: Annotated[float | None, typer.Option("--until-idle", help="Exit once nothing arrived for "
                                                     "this many seconds and all is committed (backfills, "
                                                     "tests); default: run until SIGTERM/Ctrl-C.",
                                                     show_default=False)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log rebalances and dead letters.")] = False,
) -> None:
    """Consume log records from Kafka and store them as events, with an exactly-once outcome.

    Offsets are committed only after every document up to them is stored, already stored, or
    dead-lettered; writes are create-only with ids from topic/partition/offset. When the store is
    slow or down the worker pauses its partitions and retries with backoff. SIGTERM or Ctrl-C
    finishes the batch, commits and leaves the group. Run several with the same --group to scale
    out (up to one per partition). Example:

        soc kafka worker -b kafka1:9092 --store-url opensearch://es1:9200 --metrics-port 9108
    """
    from soc.kafka.worker import IngestWorker

    _logging(verbose)
    config = _config(bootstrap=bootstrap, topic=topic, group=group, store_url=store_url, batch_size=batch_size,
                     metrics_port=metrics_port, metrics_host=metrics_host,
                     metrics_interval_seconds=metrics_interval,
                     dead_letter_topic=dead_letter_topic, index_prefix=index_prefix, index_replicas=replicas,
                     max_message_bytes=max_message_bytes, invalid_utf8=invalid_utf8, client_id=client_id,
                     session_timeout_ms=session_timeout_ms)
    from soc.net import listen_address

    if config.metrics_port is None:
        metrics = "metrics endpoint off (--metrics-port)"
    elif config.metrics_port == 0:
        metrics = f"metrics on {config.metrics_host}, a free port (logged when bound)"
    else:
        metrics = f"metrics on {listen_address(config.metrics_host, config.metrics_port)}"
    typer.echo(f"soc kafka worker: group {config.group}, topics {', '.join(config.topics)} from "
               f"{config.bootstrap} into {config.display_store_url}; {metrics}", err=True)
    try:
        ingest = IngestWorker(config)
    except Exception as error:  # noqa: BLE001  (store unreachable, bad URL: say what to check)
        fail(str(error))

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("soc.kafka.worker").warning("signal %d: finishing the batch, committing, leaving the group",
                                                      signum)
        ingest.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        result = ingest.run(until_idle=until_idle)
    except _kafka_unreachable() as error:
        fail(f"Kafka at {config.bootstrap} is unreachable ({error}): check --bootstrap and that the brokers run")
    typer.echo(json.dumps(result.snapshot()))


@app.command()
def relay(
    bootstrap: Bootstrap = None, topic: Topic = None,
    udp: Annotated[str | None, typer.Option("--udp", help="UDP listen address (default SOC_SYSLOG__UDP, "
                                            "0.0.0.0:5514); '' disables.", show_default=False)] = None,
    tcp: Annotated[str | None, typer.Option("--tcp", help="TCP listen address (default SOC_SYSLOG__TCP, "
                                            "0.0.0.0:5514); '' disables.", show_default=False)] = None,
    source: Annotated[str, typer.Option("--source", help="Source name recorded with each message.")] = "syslog",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More logging.")] = False,
) -> None:
    """Listen for syslog (UDP/TCP, RFC 6587 framing; TLS/mTLS on its own port when syslog.tls is
    set, RFC 5425) and publish each message to Kafka.

    The record key is the agency of the client certificate (mutual TLS), else the one resolved
    from the sender's address (ingest/agencies.yml); the value is the message bytes as received;
    acks=all, retries, flushed before each next batch and on stop (SIGTERM/Ctrl-C). Workers
    (`soc kafka worker`) then store them.
    """
    import threading

    from soc.agencies import load_agencies
    from soc.ingest.sourcedefs import SourceDefinition
    from soc.ingest.sources import SourceError
    from soc.ingest.sources.tls import tls_endpoint
    from soc.kafka.relay import SyslogRelay
    from soc.net import listen_address

    _logging(verbose)
    settings = load_settings()
    udp_addr = settings.syslog.udp if udp is None else udp
    tcp_addr = settings.syslog.tcp if tcp is None else tcp
    agencies = load_agencies()
    try:
        tls = tls_endpoint(SourceDefinition(name=source, type="syslog"), settings.syslog.tls, agencies)
    except (SourceError, SecretError) as error:
        fail(str(error))
    if not udp_addr and not tcp_addr and tls is None:
        typer.echo("error: give --udp and/or --tcp (or set syslog.tls)", err=True)
        raise typer.Exit(2)
    servers = bootstrap or settings.kafka.bootstrap
    security = _security(settings, servers)
    try:
        r = SyslogRelay(servers, topic or settings.kafka.topic, udp=udp_addr or None, tcp=tcp_addr or None,
                        tls=tls, source_name=source, agencies=agencies, security=security,
                        max_frame_bytes=4 * settings.syslog.max_message_bytes)
    except _kafka_unreachable() as error:
        typer.echo(f"error: Kafka at {servers} is unreachable ({error}): check --bootstrap", err=True)
        raise typer.Exit(2) from error
    try:
        r.start()
    except OSError as error:
        typer.echo(f"error: {error} (ports below 1024 need root; use --udp/--tcp with a free port)", err=True)
        raise typer.Exit(2) from error
    for kind, address in (("UDP", r.udp_address), ("TCP", r.tcp_address),
                          (tls.kind if tls else "TLS", r.tls_address)):
        if address:
            typer.echo(f"relaying syslog on {kind} {listen_address(address[0], address[1])} -> {r.topic}", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    r.stop()
    typer.echo(json.dumps({"sent": r.sent, "failed": r.failed, "listener": r.listener.counters.snapshot()}))


@app.command()
def status(
    bootstrap: Bootstrap = None, topic: Topic = None, group: Group = None, dead_letter_topic: DeadTopic = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show the consumer group's lag per partition (end offset minus committed offset) and the
    number of dead letters. Reads from the broker; works whether workers run or not."""
    from soc.kafka.status import group_status

    settings = load_settings()
    k = settings.kafka
    servers = bootstrap or k.bootstrap
    st = group_status(servers, group or k.group, [topic or k.topic], dead_letter_topic or k.dead_letter_topic,
                      security=_security(settings, servers))
    if as_json:
        typer.echo(json.dumps(st.as_dict()))
        return
    from rich.table import Table

    from soc.ui import console

    table = Table(title=f"group {st.group}: lag {st.lag:,}"
                        + (" (fully committed)" if st.fully_committed else ""))
    for column in ("topic", "partition", "committed", "end offset", "lag"):
        table.add_column(column, justify="right" if column != "topic" else "left")
    for p in st.partitions:
        table.add_row(p.topic, str(p.partition), "-" if p.committed is None else f"{p.committed:,}",
                      f"{p.end:,}", f"{p.lag:,}")
    out = console()
    out.print(table)
    out.print(f"dead letters in {st.dead_letter_topic}: {st.dead_letters if st.dead_letters is not None else '?'}"
              " (`soc kafka dlq list`)")


@dlq_app.command("list")
def dlq_list(
    bootstrap: Bootstrap = None, dead_letter_topic: DeadTopic = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per dead letter (raw bytes as "
                                          "base64).")] = False,
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many (0: all).")] = 100,
) -> None:
    """List dead letters: original coordinates, stage, reason and the start of the payload,
    then a count per reason."""
    import base64
    from collections import Counter

    from soc.kafka.deadletters import read_dead_letters
    from soc.ui import literal

    settings = load_settings()
    topic = dead_letter_topic or settings.kafka.dead_letter_topic
    reasons: Counter[str] = Counter()
    shown = 0
    servers = bootstrap or settings.kafka.bootstrap
    for letter in read_dead_letters(servers, topic, security=_security(settings, servers)):
        reasons[letter.reason.split(":", 1)[0] if letter.stage != "store" else
                "store rejected: " + letter.reason.split(":")[1].strip()] += 1
        if limit and shown >= limit:
            continue
        shown += 1
        if as_json:
            typer.echo(json.dumps({
                "coordinates": str(letter.coordinates), "event_id": letter.event_id, "stage": letter.stage,
                "reason": letter.reason, "dead_lettered": letter.dlq_time,
                "key": letter.key.decode("utf-8", "replace") if letter.key is not None else None,
                "value_b64": base64.b64encode(letter.value).decode() if letter.value is not None else None}))
        else:
            typer.echo(f"{letter.coordinates}  [{letter.stage}] {literal(letter.reason)}\n    "
                       f"{literal(letter.preview())}")
    if not as_json:
        typer.echo(f"{sum(reasons.values())} dead letters in {topic}:")
        for reason, n in reasons.most_common():
            typer.echo(f"  {n:>8}  {literal(reason)}")


@dlq_app.command("replay")
def dlq_replay(
    bootstrap: Bootstrap = None, dead_letter_topic: DeadTopic = None, store_url: StoreUrl = None,
    index_prefix: Prefix = None, replicas: Replicas = None, max_message_bytes: MaxBytes = None,
    invalid_utf8: InvalidUtf8 = None,
) -> None:
    """Re-ingest every dead letter after a fix (a larger --max-message-bytes, --invalid-utf8 store,
    an agency added to ingest/agencies.yml, a corrected mapping...).

    Idempotent: each record gets the event id of its original topic/partition/offset, so a second
    replay -- or a record that was stored after all -- writes nothing new. Nothing is deleted or
    re-published; what still fails is listed with its reason.
    """
    from soc.kafka.deadletters import read_dead_letters
    from soc.kafka.replay import replay as run_replay
    from soc.ui import literal

    _logging(False)
    settings = load_settings()
    config = _config(bootstrap=bootstrap, store_url=store_url, index_prefix=index_prefix, index_replicas=replicas,
                     max_message_bytes=max_message_bytes, invalid_utf8=invalid_utf8,
                     dead_letter_topic=dead_letter_topic)
    topic = dead_letter_topic or settings.kafka.dead_letter_topic
    result = run_replay(read_dead_letters(config.bootstrap, topic, security=config.security), config)
    for coordinates, reason in result.still_failing:
        typer.echo(f"still failing {coordinates}: {literal(reason)}", err=True)
    typer.echo(json.dumps(result.as_dict()))


if __name__ == "__main__":
    app()
