"""``soc detect``: the rule scheduler as its own process, for scale-out and high availability.

Everything it does is in
:mod:`soc.detect.scheduler` (leases, watermarks, health) and :mod:`soc.detect.engine`; this
module only reads options, opens the store and prints what happened.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from soc.ui import json_text

HELP = (
    'Run the detection scheduler against a store, as its own process.\n\n'
    'Start one or more of these next to the ingest workers (one per machine or container for '
    'high availability); they share nothing but the store.\n\n'
    '[bold]Windows.[/] Every rule keeps a watermark on ingest time (event.ingested) in the '
    "store's rule_state collection. Each run of a rule covers [watermark - overlap, now - "
    'settle) and then moves the watermark to the end of that window, so a restart, an outage '
    'or a batch of old logs arriving late leaves no gap: late events carry a late ingest time '
    'and fall into the next window. The overlap re-reads recent data; that never duplicates '
    'an alert, because alert ids are deterministic and alerts are written create-only. A rule '
    'that has never run starts one day back in ingest time.\n\n'
    '[bold]Leases.[/] Every process schedules every rule. Before running a window a process '
    "claims it with a compare-and-set on the rule's state document (lease owner and lease "
    'expiry); of several processes reading the same state only one wins, the others skip the '
    'rule until its next interval. So no window runs twice. A process that dies mid-run '
    '(SIGKILL, power loss) leaves its claim behind; when the lease expires (--lease, default '
    '120 s) another process claims the same window again from the old watermark, so no window '
    'is lost. While a run goes on, its process renews the lease every third of --lease, so a '
    "slow run keeps its window. `soc rules health` shows each rule's watermark, last owner, "
    'take-overs and errors.\n\n'
    '[bold]Load.[/] At most --max-concurrent rules run at a time in this process, and every '
    "search carries --query-timeout (the search's own timeout and the client's). A query that "
    "times out or answers from only some shards fails that run: the rule's health says so "
    '(last_timed_out), the watermark stays, and the window is retried -- never cut short '
    'silently.\n\n'
    '[bold]Also run.[/] As `soc run` does: the rules over the logs already in the search cluster '
    '(setting search_sources, queried in place; their own watermarks and leases) and, with '
    'intel.enabled, the threat-intel jobs: the feeds, indicator matching of the newly stored events '
    'and the retro-hunt (a watermark moved by compare-and-set, and alerts are create-only, so '
    'several processes may run them; --no-intel leaves them to another process).\n\n'
    'Examples:\n\n'
    'soc detect --store-url opensearch://es1:9200 --owner detect-a\n\n'
    'soc detect --store-url sqlite:///soc-data/soc.db --rules detections --once\n'
)


def _printer(enabled: bool):  # type: ignore[no-untyped-def]
    lock = threading.Lock()

    def on_run(detection: Any, result: Any, health: dict[str, Any]) -> None:
        if not enabled:
            return
        line = {"rule": result.rule_id, "title": detection.info.title, "owner": health.get("last_owner"),
                "window": list(result.window), "created": len(result.created), "updated": result.updated,
                "matches": result.matches, "truncated": result.truncated, "error": result.error,
                "timed_out": health.get("last_timed_out", False), "recorded": health.get("recorded"),
                "watermark": health.get("watermark"), "duration": round(result.duration, 4)}
        with lock:
            sys.stdout.write(json_text(line) + "\n")
            sys.stdout.flush()

    return on_run


def detect(
    store_url: Annotated[str | None, typer.Option(
        "--store-url", help="sqlite:///path.db, opensearch://host:9200, elasticsearch+https://USER@host:9200 "
        "(default: SOC_STORE_URL, else the embedded SQLite store in the data dir); the password comes from "
        "store_password_file/_env (SOC_STORE_PASSWORD_FILE...), not the command line.",
        show_default=False)] = None,
    rules: Annotated[list[Path] | None, typer.Option(
        "--rules", "-r", help="Sigma rule folder or file; repeat for several (default: the project's "
        "detections/ plus SOC_RULE_DIRS).", show_default=False)] = None,
    once: Annotated[bool, typer.Option(
        help="Claim and run every rule's next window once, then exit (cron style).")] = False,
    owner: Annotated[str | None, typer.Option(
        help="This scheduler's name in leases and health (default: host:pid:random). Give every "
        "process its own.", show_default=False)] = None,
    interval: Annotated[float | None, typer.Option(
        help="Seconds between runs of a rule (default: SOC_DETECTION__INTERVAL_SECONDS, 60).",
        show_default=False)] = None,
    overlap: Annotated[float | None, typer.Option(
        help="Seconds each window re-reads before the watermark (default: settings, 120).",
        show_default=False)] = None,
    settle: Annotated[float | None, typer.Option(
        help="A window ends this many seconds before now (default: settings, 5).", show_default=False)] = None,
    lease: Annotated[float, typer.Option(
        help="Seconds a claim on a rule's window is valid unless renewed (every third of it while "
        "the run goes on); a claim left by a dead process is taken over after this.")] = 120.0,
    max_concurrent: Annotated[int | None, typer.Option(
        help="Rules evaluated at the same time by this process (default: settings, 2).",
        show_default=False)] = None,
    query_timeout: Annotated[float | None, typer.Option(
        help="Seconds a search may take (search stores; default: settings, 60).", show_default=False)] = None,
    index_prefix: Annotated[str, typer.Option(help="Index name prefix (search stores).")] = "soc",
    replicas: Annotated[int | None, typer.Option(
        help="Replicas of the indices this process creates (search stores; default: the cluster's). "
        "Use 0 on a single node.", show_default=False)] = None,
    log_runs: Annotated[bool, typer.Option(
        "--log-runs/--quiet", help="Print one JSON line per run on stdout (rule, window, owner, alerts, error).")] = True,
    intel: Annotated[bool, typer.Option(
        "--intel/--no-intel", help="Also run the threat-intel jobs when intel.enabled (feeds, indicator "
        "matching, retro-hunt; with --once: one matching cycle).")] = True,
) -> None:
    from soc.app import App
    from soc.config import load_settings
    from soc.secrets import SecretError, mask_urls_in, redact_logs, warn_password_option
    from soc.store import StoreError

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact_logs()
    settings = load_settings()
    redact_logs(settings.secret_values())
    if store_url:
        warn_password_option("--store-url", store_url)
    shown = settings.store_display_url(store_url or settings.resolved_store_url)
    options: dict[str, Any] = {"prefix": index_prefix}
    if query_timeout is not None:
        options["query_timeout"] = query_timeout
    if replicas is not None:
        options["replicas"] = replicas
    app = App(settings, store_url=store_url, store_options=options, rule_dirs=rules)
    try:
        app.store  # noqa: B018 -- open it now: a wrong URL or password is the first thing to report
        detections = app.detections
    except (StoreError, SecretError) as error:  # unreachable, bad URL, password file or variable missing
        typer.echo(f"error: {mask_urls_in(str(error))}", err=True)
        raise typer.Exit(2) from error
    except FileNotFoundError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    timing = app.timing(interval=interval, overlap=overlap, settle=settle, lease=lease)
    printer = _printer(log_runs)
    runner = app.rule_runner(timing=timing, owner=owner, on_run=printer)
    sources = app.search_source_runners(timing=timing, owner=runner.owner, on_run=printer)  # in-place logs
    intel = intel and settings.intel.enabled
    workers = max_concurrent if max_concurrent is not None else settings.detection.max_concurrent_rules
    typer.echo(f"soc detect: {len(detections)} rules on {shown} as {runner.owner} (interval {timing.interval:g} s, "
               f"overlap {timing.overlap:g} s, settle {timing.settle:g} s, lease {timing.lease:g} s, "
               f"{workers} at a time)"
               + "".join(f"; {len(d)} rules on search source {r.store.source.name}" for r, d in sources)
               + ("; threat-intel jobs" if intel else ""), err=True)
    try:
        if once:
            results = runner.run_all_once(detections, workers)
            total = len(detections)
            for source_runner, source_detections in sources:
                results += source_runner.run_all_once(source_detections, workers)
                total += len(source_detections)
            failed = [r for r in results if r.error]
            typer.echo(f"ran {len(results)} of {total} rules (the others were held by another "
                       f"scheduler or had nothing new); {sum(len(r.created) for r in results)} new alerts; "
                       f"{len(failed)} failed", err=True)
            if intel:
                figures = app.intel_matching().run_once()
                typer.echo(f"indicator matching: {figures.get('events', 0)} events, {figures.get('alerts', 0)} "
                           "new alerts", err=True)
            if failed:
                raise typer.Exit(1)
            return
        scheduler = app.detection_scheduler(runner, workers=workers)
        extra = app.search_source_schedulers(sources, workers=workers)
        if intel:
            app.register_intel_jobs(scheduler.scheduler)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        scheduler.start()
        for each in extra:
            each.start()
        stop.wait()
        typer.echo("stopping: finishing the runs in progress (their leases are released)", err=True)
        scheduler.stop()
        for each in extra:
            each.stop()
    finally:
        app.close()


detect.__doc__ = HELP
