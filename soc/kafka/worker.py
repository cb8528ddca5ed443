"""The Kafka ingest worker: a consumer-group member that turns log records into stored events.

**When offsets are committed** (the rule everything else follows)::

    poll ─> batch ─> decode/parse/normalize ─> bulk write (create-only, id from
            topic/partition/offset) ─> dead letters published and acknowledged
            ─> commit, per partition, the offset after the last *settled* record

A record is *settled* when its document's bulk result is known and final -- created (201),
already there (409: a redelivery) or rejected and its dead letter acknowledged by Kafka
(``acks=all``) -- or when it went to the dead-letter topic before reaching the store
(malformed, oversized, not UTF-8). For each partition the worker commits the offset of its
first unsettled record, or the offset after the batch when every record is settled; it never
commits past a record whose outcome is unknown. Offsets are committed explicitly per partition
(``enable_auto_commit=False``), synchronously, after every batch and before the next ``poll``.
So a crash at any moment re-reads at most the unsettled records, and since every document's
id is derived from its record's coordinates and written with ``op_type=create``, a re-read
record is answered ``409`` and counted ``existing``: at-least-once delivery with idempotent
writes, an exactly-once outcome in the store.

**Retries and backpressure.** Documents answered 429/5xx, or a bulk request that times out or
cannot reach the store at all, stay in the batch and only they are sent again (the search
store already sorts each item into created/existing/retryable/rejected, and splits a request
that is too large). Between attempts the worker waits with exponential backoff and jitter (0.5
s doubling up to ``retry_max_seconds``) and **pauses** every assigned partition, so nothing more
is fetched: memory stays bounded by one batch however long the store is down. While paused it
keeps calling ``poll`` (which fetches nothing) so it stays a live member of the group; it
resumes the partitions once the batch is settled. A single bulk request is bounded by the
store's write timeout (60 s), well inside ``max_poll_interval_ms`` (300 s by default).

**Pipelining.** The bulk request of one batch runs on a writer thread while the main thread
parses the next one; the main thread calls ``poll`` only when no write is in flight, so a
rebalance (which happens only inside ``poll`` or ``close``) never meets a half-written batch.

**Rebalances.** Every write result is applied and its offsets committed before the next
``poll``, so at a revocation the only uncommitted records are the parsed batch waiting for its
write (and, while the store is failing, the batch parked for retry). The rebalance listener
(``on_partitions_revoked``) commits whatever of the revoked partitions is settled but not yet
committed, releases their unsettled records without committing them, and rewinds those
partitions to their first unsettled record, so whichever member owns them next -- possibly this
one, which keeps a retained partition's position -- reads them again from there. It does not
write them itself: in kafka-python 3.x the listener runs on the client's network thread, and a
bulk request there (up to the write timeout while the store struggles) would stop heartbeats. A
released record is therefore re-read, never lost, and since it was not written -- or if it was,
is answered 409 -- never doubled. ``on_partitions_lost`` (the member was evicted) releases the
same way without committing.

**Stopping.** :meth:`IngestWorker.stop` (SIGTERM/SIGINT in ``soc kafka worker``) lets the
current batch settle and commit, then closes the consumer, which leaves the group at once (no
wait for the session timeout). If the store is down at that moment the worker keeps retrying
for ``stop_grace`` seconds and then exits without committing the unsettled records (they are
read again on the next start).

**Dead letters** (:mod:`soc.kafka.deadletters`): malformed records (no value, unknown agency,
bad headers), records over ``max_message_bytes``, records that are not UTF-8 (unless
``invalid_utf8="store"``: then they are stored with ``soc.raw_b64``), empty records, and
documents the store rejects (mapping errors, other 4xx) go to the dead-letter topic with the
reason, the exact bytes and the coordinates. Every consumed record is accounted for: it is
stored, already there, or dead-lettered (``soc kafka status`` and the metrics say how many).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from soc.agencies import AgencyTree, load_agencies
from soc.ingest.pipeline import IngestPipeline, build_pipeline
from soc.kafka import deadletters as dl
from soc.kafka.config import WorkerConfig, client_options, open_event_store
from soc.kafka.consumer import consumer_options
from soc.kafka.messages import ContextKey, Coordinates, Malformed, context_for, inspect, to_record
from soc.kafka.metrics import MetricsServer, WorkerMetrics
from soc.kafka.pending import DeadLetterStandIn, PendingBatch
from soc.model import Event
from soc.retry import Backoff
from soc.store.base import Store, StoreError, WriteResult

__all__ = ["IngestWorker", "WorkerConfig", "open_event_store"]

log = logging.getLogger("soc.kafka.worker")

_Batch = PendingBatch  # the name the unit tests use


class IngestWorker:
    """One consumer-group member: Kafka -> ingest pipeline -> store. See the module docstring."""

    def __init__(self, config: WorkerConfig, *, store: Store | None = None, agencies: AgencyTree | None = None,
                 consumer_factory: Callable[..., Any] | None = None) -> None:
        self.config = config
        self.metrics = WorkerMetrics()
        self.agencies = agencies or load_agencies()
        self.store = store or open_event_store(config.store_url, config.index_prefix, config.write_timeout,
                                               config.index_replicas)
        self._own_store = store is None
        self._consumer_factory = consumer_factory
        self.consumer: Any = None
        self.producer: Any = None
        self.batch = PendingBatch()
        self.committed: dict[Any, int] = {}
        self._stopping = False
        self._stop_at: float | None = None
        self._pipelines: dict[ContextKey, tuple[IngestPipeline, DeadLetterStandIn]] = {}
        self._inspect_cache: dict[tuple[Any, ...], tuple[ContextKey, str | None] | str] = {}
        #: waits while the store refuses documents: 0.5 s doubling up to retry_max_seconds, +-25 %
        self.backoff = Backoff(base=0.5, factor=2.0, max=config.retry_max_seconds, jitter=0.25)
        self._failures = 0  # consecutive write attempts that left documents to retry
        self._retry_at: float | None = None
        self._pending_since = 0.0
        self._writer: ThreadPoolExecutor | None = None
        self._metrics_server: MetricsServer | None = None
        self._last_report = self._last_lag = time.monotonic()
        self.running = False

    # -- lifecycle -------------------------------------------------------------------------------
    def _make_consumer(self) -> Any:
        from kafka import KafkaConsumer

        c = self.config
        options = consumer_options(c.bootstrap, c.group, client_id=c.client_id, batch_size=c.batch_size,
                                   max_poll_interval_ms=c.max_poll_interval_ms,
                                   session_timeout_ms=c.session_timeout_ms, security=c.security)
        factory = self._consumer_factory or KafkaConsumer
        return factory(**options)

    def _dead_letter_producer(self) -> Any:
        if self.producer is None:
            from kafka import KafkaProducer

            self.producer = KafkaProducer(**client_options(
                self.config.bootstrap, self.config.security, client_id=f"{self.config.client_id}-dlq", acks="all",
                retries=2**31 - 1, linger_ms=5, max_request_size=16 * 1024 * 1024,
                delivery_timeout_ms=120_000))
        return self.producer

    def stop(self) -> None:
        """Ask the worker to finish its batch, commit and leave the group (safe from a signal handler)."""
        self._stopping = True
        self._stop_at = time.monotonic()

    def run(self, *, until_idle: float | None = None) -> WorkerMetrics:
        """Consume until :meth:`stop` (or, with ``until_idle``, until nothing arrived for that
        many seconds and every batch is committed). Returns the metrics."""
        from kafka import AsyncConsumerRebalanceListener

        worker = self

        class Listener(AsyncConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: Any) -> None:
                if not revoked:
                    return
                offsets = worker._on_revoked(set(revoked))
                if offsets:
                    try:
                        await worker.consumer.commit_async(offsets)
                        worker._committed(offsets)
                    except Exception as error:  # noqa: BLE001  (the next owner re-reads; writes are idempotent)
                        log.warning("commit at revocation failed (%s); those records will be read again", error)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                log.info("assigned %s", sorted(f"{tp.topic}/{tp.partition}" for tp in assigned))

            async def on_partitions_lost(self, lost: Any) -> None:
                if lost:
                    worker._on_revoked(set(lost))

        if self.config.metrics_port is not None:
            self._metrics_server = MetricsServer(self.metrics, self.config.metrics_port,
                                                 self.config.metrics_host).start()
            self._metrics_server.announce()
        self.consumer = self._make_consumer()
        self.consumer.subscribe(self.config.topics, listener=Listener())
        self.running = True
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soc-kafka-bulk")
        idle_since = time.monotonic()
        try:
            while True:
                if self._stopping and (not self.batch.unsettled() or self._grace_over()):
                    break
                took = self._step()
                if took or self.batch.unsettled():
                    idle_since = time.monotonic()
                elif until_idle is not None and time.monotonic() - idle_since > until_idle:
                    break
                self._report()
        finally:
            self._writer.shutdown(wait=True)
            self._close()
        return self.metrics

    def _grace_over(self) -> bool:
        return self._stop_at is not None and time.monotonic() - self._stop_at > self.config.stop_grace

    def _close(self) -> None:
        try:
            if self.batch.unsettled():
                log.warning("stopping with %d unsettled records not committed; they will be read again",
                            sum(len(v) for v in self.batch.open.values()))
            if self.consumer is not None:
                self.consumer.close(autocommit=False)  # revokes (listener), then leaves the group
        finally:
            self.running = False
            if self.producer is not None:
                self.producer.flush(30)
                self.producer.close(timeout=10)
            if self._own_store:
                self.store.close()
            self.metrics.tick()
            log.info("%s", self.metrics.log_line())
            if self._metrics_server is not None:
                self._metrics_server.stop()

    # -- the loop --------------------------------------------------------------------------------
    def _step(self) -> int:
        """One turn: poll (no write in flight, so a rebalance never meets one), start the bulk
        write of everything parsed and unsettled, parse what was polled while it runs, apply the
        result, publish dead letters, commit. Returns how many records were taken."""
        batch = self.batch
        now = time.monotonic()
        waiting = self._retry_at is not None and now < self._retry_at
        if self._retry_at is not None:  # backpressure: fetch nothing (new assignments included)
            assigned = self.consumer.assignment()
            if assigned:
                self.consumer.pause(*assigned)
        polled: dict[Any, list[Any]] = {}
        if not self._stopping:
            if waiting:
                timeout = max(1, int(min(0.5, self._retry_at - now) * 1000))  # type: ignore[operator]
            else:
                timeout = 0 if batch.events else 500
            size = self.config.batch_size
            polled = self.consumer.poll(timeout_ms=timeout, max_records=size)
            got = sum(len(r) for r in polled.values())
            while polled and got < size and not waiting:  # fill the batch from what is buffered
                more = self.consumer.poll(timeout_ms=0, max_records=size - got)
                if not more:
                    break
                for tp, records in more.items():
                    polled.setdefault(tp, []).extend(records)
                got += sum(len(r) for r in more.values())
        elif waiting:
            time.sleep(max(0.0, min(0.5, self._retry_at - now)))  # type: ignore[operator]
        future = ids = None
        if not batch.events:
            self._pending_since = time.monotonic()
        full = (len(batch.events) >= self.config.batch_size or not polled or self._stopping
                or time.monotonic() - self._pending_since > 1.0)  # a partial batch waits 1 s at most
        if batch.events and full and (self._retry_at is None or time.monotonic() >= self._retry_at):
            ids = list(batch.events)
            future = self._writer.submit(self._write, [batch.events[i] for i in ids])
        took = 0
        for tp, records in polled.items():  # parsing overlaps the bulk request
            took += len(records)
            self._take(tp, records)
        if future is not None and ids is not None:
            result = future.result()
            if result is None:
                result = WriteResult(retryable=ids)
            self._apply(ids, result)
            if any(i in batch.events for i in ids):
                self._back_off()
            else:
                self._written()
        if batch.dead:
            self._publish_dead()
            if batch.dead:
                self._back_off()
        self._commit()
        if not batch.unsettled():
            batch.reset()
        return took

    def _write(self, docs: list[Event]) -> WriteResult | None:
        """The bulk request (on the writer thread); None when the store could not be used at all."""
        try:
            return self.store.write_events(docs)
        except StoreError as error:
            self.metrics.store_failures += 1
            log.warning("store write failed, %d documents will be retried: %s", len(docs), error)
            return None

    def _take(self, tp: Any, records: list[Any]) -> None:
        batch = self.batch
        if self.metrics.first_record_at is None:
            self.metrics.first_record_at = time.time()
        self.metrics.consumed += len(records)
        batch.end[tp] = records[-1].offset + 1
        open_ = batch.open[tp]
        groups: dict[ContextKey, list[tuple[Any, str | None]]] = defaultdict(list)
        cache = self._inspect_cache
        for rec in records:
            headers = rec.headers
            cache_key = (rec.key, tuple(headers) if headers else None, rec.value is None)
            found = cache.get(cache_key)
            if found is None:
                try:
                    found = inspect(rec.topic, rec.key, rec.value, headers, self.agencies, self.config.timezone)
                except Malformed as error:
                    found = str(error)
                if len(cache) > 50_000:
                    cache.clear()
                cache[cache_key] = found
            open_.add(rec.offset)
            if isinstance(found, str):
                self._dead(tp, rec, found, dl.STAGE_RECORD)
            else:
                groups[found[0]].append((rec, found[1]))
        for key, items in groups.items():
            self._process(tp, key, items)

    def _pipeline(self, key: ContextKey) -> tuple[IngestPipeline, DeadLetterStandIn]:
        found = self._pipelines.get(key)
        if found is None:
            sink = DeadLetterStandIn()
            pipeline = build_pipeline(context_for(key, self.agencies), key.fmt,
                                      max_message_bytes=self.config.max_message_bytes, dead_letter=sink)
            found = self._pipelines[key] = (pipeline, sink)
        return found

    def _process(self, tp: Any, key: ContextKey, items: list[tuple[Any, str | None]]) -> None:
        pipeline, sink = self._pipeline(key)
        batch = self.batch
        store_invalid = self.config.invalid_utf8 == "store"
        for rec, peer in items:
            record = to_record(rec.topic, rec.partition, rec.offset, rec.timestamp, rec.value, peer)
            sink.last = None
            event = pipeline.process_one(record)
            if event is None:
                reason = sink.last[1] if sink.last else "empty record: nothing but whitespace"
                self._dead(tp, rec, reason, dl.STAGE_PIPELINE)
                continue
            if not store_invalid and "soc.decode.error" in event:
                self._dead(tp, rec, "not UTF-8: the value holds bytes that are not valid UTF-8 (replay with "
                                    "--invalid-utf8 store to keep them with soc.raw_b64)", dl.STAGE_PIPELINE)
                continue
            id_ = record.event_id
            batch.events[id_] = event
            batch.where[id_] = (tp, rec.offset)
            batch.raw[id_] = rec

    def _dead(self, tp: Any, rec: Any, reason: str, stage: str) -> None:
        letter = dl.DeadLetter(reason=reason, stage=stage, coordinates=Coordinates(rec.topic, rec.partition, rec.offset),
                               timestamp_ms=rec.timestamp, key=rec.key, value=rec.value, headers=list(rec.headers or ()))
        self.batch.dead.append((letter, tp))

    # -- writing and committing ------------------------------------------------------------------
    def _attempt(self) -> None:
        batch = self.batch
        if batch.events:
            ids = list(batch.events)
            try:
                result = self.store.write_events([batch.events[i] for i in ids])
            except StoreError as error:
                self.metrics.store_failures += 1
                log.warning("store write failed, %d documents will be retried: %s", len(ids), error)
                result = WriteResult(retryable=ids)
            self._apply(ids, result)
        if batch.dead:
            self._publish_dead()

    def _apply(self, ids: list[str], result: WriteResult) -> None:
        batch, m = self.batch, self.metrics
        m.stored += result.created
        m.existing += result.existing
        keep = set(result.retryable)
        if keep:
            m.retries += len(keep)
        for id_, reason in result.rejected:
            rec = batch.raw.get(id_)
            if rec is None:
                continue
            keep.add(id_)  # open until its dead letter is acknowledged
            batch.events.pop(id_, None)
            self._dead(batch.where[id_][0], rec, f"store rejected: {reason}", dl.STAGE_STORE)
        for id_ in ids:
            if id_ in keep:
                continue
            tp, offset = batch.where.pop(id_)
            batch.open[tp].discard(offset)
            del batch.events[id_]
            batch.raw.pop(id_, None)

    def _publish_dead(self) -> None:
        producer = self._dead_letter_producer()
        sent = []
        for letter, tp in self.batch.dead:
            sent.append((letter, tp, producer.send(self.config.dead_letter_topic, **letter.to_kafka())))
        try:
            producer.flush(timeout=60)
        except Exception as error:  # noqa: BLE001
            log.warning("dead-letter flush failed: %s", error)
        left = []
        for letter, tp, future in sent:
            if future.is_done and future.succeeded():
                self.metrics.dead(letter.stage)
                self.batch.open[tp].discard(letter.coordinates.offset)
                id_ = letter.event_id
                self.batch.where.pop(id_, None)
                self.batch.raw.pop(id_, None)
                log.info("dead letter %s: %s", letter.coordinates, letter.reason)
            else:
                left.append((letter, tp))
                log.warning("dead letter for %s not acknowledged (%s); retrying", letter.coordinates,
                            future.exception if future.is_done else "timeout")
        self.batch.dead = left

    def _commit(self) -> None:
        from kafka import OffsetAndMetadata

        targets = self.batch.commit_targets(self.committed)
        if not targets:
            return
        offsets = {tp: OffsetAndMetadata(off, "", -1) for tp, off in targets.items()}
        try:
            self.consumer.commit(offsets)
        except Exception as error:  # noqa: BLE001  (rebalance/eviction: re-read later, idempotent)
            log.warning("offset commit failed (%s); the records after the last commit will be read again", error)
            return
        self._committed(offsets)

    def _committed(self, offsets: dict[Any, Any]) -> None:
        self.metrics.commits += 1
        self.metrics.last_commit_at = time.time()
        for tp, om in offsets.items():
            self.committed[tp] = om.offset

    def _back_off(self) -> None:
        """Backpressure: pause every partition (fetch nothing more) and retry after an
        exponential, jittered delay; polling goes on meanwhile, so the member stays in the group."""
        self._failures += 1
        self._retry_at = time.monotonic() + self.backoff.delay(self._failures)
        if not self.metrics.paused:
            log.warning("store not accepting every document: pausing consumption, retrying with backoff")
            self.metrics.paused = True
            assigned = self.consumer.assignment()
            if assigned:
                self.consumer.pause(*assigned)

    def _written(self) -> None:
        self.metrics.batches += 1
        self._failures = 0
        self._retry_at = None
        if self.metrics.paused:
            paused = self.consumer.paused()
            if paused:
                self.consumer.resume(*paused)
            self.metrics.paused = False
            log.warning("store accepting again: consumption resumed")

    def _on_revoked(self, partitions: set[Any]) -> dict[Any, Any]:
        """Listener: commit targets of the revoked partitions; release their open records."""
        from kafka import OffsetAndMetadata

        self.metrics.rebalances += 1
        targets = {tp: off for tp, off in self.batch.commit_targets(self.committed).items() if tp in partitions}
        rewind = self.batch.release(partitions)
        for tp, offset in rewind.items():
            self.metrics.dropped_on_revoke += 1
            try:
                self.consumer.seek(tp, offset)  # if this member keeps it, it re-reads from here
            except (ValueError, AssertionError):
                pass
        if rewind:
            log.info("revoked with unsettled records; released from %s",
                     {f"{tp.topic}/{tp.partition}": o for tp, o in rewind.items()})
        for tp in partitions:
            self.committed.pop(tp, None)
        return {tp: OffsetAndMetadata(off, "", -1) for tp, off in targets.items()}

    # -- metrics ---------------------------------------------------------------------------------
    def _report(self) -> None:
        now = time.monotonic()
        if now - self._last_lag >= 2.0:
            self._last_lag = now
            lag = {}
            for tp in self.consumer.assignment():
                high = self.consumer.highwater(tp)
                done = self.committed.get(tp)
                if done is None and not self.batch.open.get(tp):
                    try:  # nothing taken from it yet: the position is the committed offset
                        done = self.consumer.position(tp, timeout_ms=100)
                    except Exception:  # noqa: BLE001
                        done = None
                if high is not None and done is not None:
                    lag[f"{tp.topic}/{tp.partition}"] = max(0, high - done)
            self.metrics.lag = lag
        if now - self._last_report >= self.config.metrics_interval_seconds:
            self.metrics.tick()
            log.info("%s", self.metrics.log_line())
            self._last_report = now
