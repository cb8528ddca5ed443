"""``soc config check``: is the whole configuration valid, and what would run with it.

It reads the settings strictly (:func:`soc.config.check_settings`: unknown keys and variables,
wrong values), checks that the secrets the settings name can be read, then loads the content
folders with the loaders the service uses: ``ingest/`` (agencies, source definitions and the
dataset catalogue, :mod:`soc.ingest.sourcedefs`, :mod:`soc.catalog`), the rule folders
(``detections/`` plus ``rule_dirs``: :func:`soc.detect.rules.load_rules` and
:func:`soc.detect.compiler.compile_rules` for the configured store's dialect) and the playbook
folder (:func:`soc.playbooks.model.load_playbooks`). Every problem is collected, none stops the
check. The report then says what would run: the store (password masked), the sources, how many
rules apply per dataset, the playbooks and their triggers, the report recipients (endpoint
masked).

Problems make the configuration invalid; warnings (a playbook triggered by a rule no folder
has) do not.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from soc.config import Settings, SettingsCheck, check_settings, content_dir
from soc.config_errors import Problem, dotted
from soc.secrets import SecretError, mask_url, mask_urls_in

__all__ = ["ConfigReport", "check_configuration"]

CHANNELS = ("https", "email", "drop")


@dataclass
class ConfigReport:
    """What :func:`check_configuration` found; ``problems`` empty means valid."""

    settings_file: str | None
    store: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    agencies: int = 0
    rules: dict[str, Any] = field(default_factory=dict)
    playbooks: list[dict[str, Any]] = field(default_factory=list)
    recipients: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "settings_file": self.settings_file, "store": self.store, "sources": self.sources,
                "agencies": self.agencies, "rules": self.rules, "playbooks": self.playbooks,
                "recipients": self.recipients, "problems": [p.as_dict() for p in self.problems],
                "warnings": [w.as_dict() for w in self.warnings]}


def check_configuration(**overrides: Any) -> ConfigReport:
    """Check the settings and the content folders (see the module docstring). Raises
    :class:`soc.config_errors.ConfigError` (``unreadable``) only when the settings file cannot
    be read at all."""
    checked = check_settings(**overrides)
    report = ConfigReport(checked.file.name if checked.file else None, problems=list(checked.problems))
    settings = checked.settings
    if settings is None:
        settings = Settings.model_construct()
        report.warnings.append(Problem("settings", "invalid: the content folders are checked with the default "
                                       "settings (folders, rule_dirs)"))
    else:
        _check_secrets(settings, checked, report)
    report.store = settings.store_display_url()
    ingest = content_dir("ingest")
    _check_sources(settings, ingest, report)
    rule_ids = _check_rules(settings, ingest, report)
    _check_playbooks(settings, checked, rule_ids, report)
    _check_recipients(settings, checked, report)
    return report


# -- helpers ---------------------------------------------------------------------------------------
_UNICODE_STRING = re.compile(r'\s*in "<(unicode|byte) string>",?')


def _describe(error: BaseException) -> str:
    """One line for a loader's error: pydantic errors as ``field: message``, no YAML
    ``<unicode string>`` marks, URLs masked."""
    cause = error if isinstance(error, ValidationError) else error.__cause__
    if isinstance(cause, ValidationError):
        text = "; ".join(f"{dotted(tuple(e['loc'])) or 'file'}: {str(e['msg']).removeprefix('Value error, ')}" for e in cause.errors(include_url=False))
    else:
        text = _UNICODE_STRING.sub("", str(error))
    return mask_urls_in(" ".join(text.split()))


def _file_problem(path: Path | str, error: BaseException | str) -> Problem:
    """A problem of the file ``path``; the loaders start their messages with it: not twice."""
    text = error if isinstance(error, str) else _describe(error)
    prefix = f"{path}: "
    return Problem(str(path), text[len(prefix):] if text.startswith(prefix) else text)


def _text_problem(text: str) -> Problem:
    """``path: message`` (a loader's error string) as a problem of that file."""
    where, sep, message = text.partition(": ")
    return Problem(where, " ".join(message.split())) if sep and ("/" in where or where.endswith((".yml", ".yaml"))) \
        else Problem("", text)


def _where(checked: SettingsCheck, loc: tuple[Any, ...]) -> str:
    """Where a setting comes from: its variable, ``soc.yml:LINE``, or ``settings`` (a default)."""
    variable = checked.environment.variable_for(loc)
    if variable is not None:
        return f"environment variable {variable}"
    if checked.file is not None and checked.file.has(loc):
        return checked.file.where(loc)
    return "settings"


def _check_secrets(settings: Settings, checked: SettingsCheck, report: ConfigReport) -> None:
    """Each secret the settings name can be read (the values are never shown)."""
    def fields(*base: Any, name: str = "password") -> list[tuple[Any, ...]]:
        return [(*base, f"{name}_file"), (*base, f"{name}_env"), (*base, name)]

    readers: list[tuple[list[tuple[Any, ...]], Any]] = [
        (fields("smtp"), settings.smtp.login_password),
        (fields("reporting", name="key_password"), settings.reporting.signing_key_password),
    ]
    if not settings.resolved_store_url.startswith("sqlite"):
        readers.insert(0, ([*fields(name="store_password"), ("store_url",)], settings.store_connect_url))
    readers += [(fields("reporting", "recipients", i, name="token"), r.bearer_token)
                for i, r in enumerate(settings.reporting.recipients)]
    for candidates, read in readers:
        try:
            read()
        except SecretError as error:
            given = [loc for loc in candidates if checked.environment.variable_for(loc)
                     or (checked.file is not None and checked.file.contains(loc))]
            where = _where(checked, (given or candidates)[0])
            report.problems.append(Problem(where, mask_urls_in(str(error))))


# -- ingest ----------------------------------------------------------------------------------------
def _check_sources(settings: Settings, ingest: Path, report: ConfigReport) -> None:
    from soc.agencies import AgencyTree, load_agencies
    from soc.ingest.sourcedefs import (
        BY_NETWORK,
        SourceDefinition,
        context_for,
        load_sources,
    )

    agencies: AgencyTree | None = None
    try:
        agencies = load_agencies(ingest)
        report.agencies = len(agencies.agencies)
    except Exception as error:  # noqa: BLE001 -- reported with the file, the check goes on
        report.problems.append(_file_problem(ingest / "agencies.yml", error))
    files = sorted((ingest / "sources").glob("*.yml"))
    try:
        sources = list(zip(files, load_sources(ingest), strict=True))
    except Exception as error:  # noqa: BLE001 -- the loader stops at the first file: check each one
        sources = []
        found = len(report.problems)
        for path in files:
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
                sources.append((path, SourceDefinition.model_validate(data)))
            except Exception as each:  # noqa: BLE001
                report.problems.append(_file_problem(path, each))
        if len(report.problems) == found:
            report.problems.append(_file_problem(ingest / "sources", error))
    for path, source in sources:
        entry: dict[str, Any] = {"name": source.name, "type": source.type, "format": source.format,
                                 "agency": source.agency, "agency_name": None, "timezone": source.timezone,
                                 "dataset": source.dataset, "file": str(path), "reads": _reads(source, settings)}
        if agencies is not None:
            try:
                context = context_for(source, agencies)
            except Exception as error:  # noqa: BLE001 -- an agency missing from agencies.yml
                report.problems.append(_file_problem(path, error))
            else:
                entry["agency_name"] = (f"{len(agencies.agencies)} agencies by sender address"
                                        if source.agency == BY_NETWORK else context.agency_name)
        report.sources.append(entry)


def _reads(source: Any, settings: Settings) -> str:
    """Where a source reads from."""
    if source.type == "syslog":
        udp = source.listen_udp if source.listen_udp is not None else settings.syslog.udp
        tcp = source.listen_tcp if source.listen_tcp is not None else settings.syslog.tcp
        tls_settings = settings.syslog.tls
        tls = source.listen_tls if source.listen_tls is not None else tls_settings.listen if tls_settings.enabled else None
        kind = "mtls" if (source.tls_client_ca or tls_settings.client_ca) else "tls"
        return ", ".join(f"{proto} {addr}" for proto, addr in (("udp", udp), ("tcp", tcp), (kind, tls))
                         if addr) or "no listener"
    if source.type == "inbox":
        return str(source.path or settings.inbox)
    if source.type == "kafka":
        return f"topic {source.topic or settings.kafka.topic} at {source.bootstrap or settings.kafka.bootstrap}"
    return str(source.path or "")


# -- rules -----------------------------------------------------------------------------------------
def _check_rules(settings: Settings, ingest: Path, report: ConfigReport) -> set[str]:
    """Load and compile the rules; the ids (and names) of the rules loaded."""
    from soc.catalog import load_catalog
    from soc.detect.compiler import compile_rules
    from soc.detect.rules import load_rules

    folders = [content_dir("detections"), *settings.rule_dirs]
    existing = []
    for folder in folders:
        if folder.exists():
            existing.append(folder)
        else:
            report.problems.append(Problem(str(folder), "rule folder does not exist"))
    try:
        loaded = load_rules(existing)
    except Exception:  # noqa: BLE001 -- a file the loader does not survive: find it, load the rest
        loaded = load_rules(_loadable_rule_files(existing, report))
    report.problems += [Problem(p.path, " ".join(p.error.split())) for p in loaded.problems]
    ids = {str(r.id) for r in loaded.rules} | {r.name for r in loaded.rules if r.name}
    dialect = "sqlite" if settings.resolved_store_url.startswith("sqlite") else "dsl"
    summary: dict[str, Any] = {"dialect": dialect, "loaded": len(loaded.rules), "runnable": 0, "correlation_only": 0,
                               "statuses": {},
                               "per_dataset": {}, "folders": [{"folder": str(f), "rules": 0} for f in folders]}
    report.rules = summary
    for name in ("datasets.yml", "fields.yml"):
        try:
            yaml.safe_load((ingest / name).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            report.problems.append(_file_problem(ingest / name, error))
    try:
        catalog = load_catalog(ingest)
        ruleset = compile_rules(loaded, dialect=dialect, catalog=catalog)
    except Exception as error:  # noqa: BLE001 -- a broken catalogue: say so, the check goes on
        report.problems.append(Problem(f"{ingest / 'datasets.yml'}, {ingest / 'fields.yml'}",
                                       f"cannot build the dataset catalogue: {_describe(error)}"))
        return ids
    reports = ruleset.reports()
    for rule in reports:
        if rule.status == "error":
            report.problems.append(Problem(rule.path, f"rule {rule.title!r} ({rule.rule_id}): "
                                           + " ".join("; ".join(rule.errors).split())))
    runnable = ruleset.runnable()
    summary["runnable"] = len(runnable)
    summary["correlation_only"] = sum(1 for d in ruleset.detections.values() if d.runnable and not d.output)
    summary["statuses"] = dict(sorted(Counter(r.status for r in reports).items()))
    summary["per_dataset"] = dict(sorted(Counter(d for rule in runnable for d in rule.datasets).items()))
    for entry, folder in zip(summary["folders"], folders, strict=True):
        base = folder.resolve()
        entry["rules"] = sum(1 for d in ruleset.detections.values()
                             if d.info.path and _within(Path(d.info.path).resolve(), base))
    return ids


def _loadable_rule_files(folders: list[Path], report: ConfigReport) -> list[Path]:
    """The rule files that load on their own; each one that makes the loader fail is a problem."""
    from soc.detect.rules import load_rules, rule_files

    good = []
    for path in rule_files(folders):
        try:
            load_rules([path])
        except Exception as error:  # noqa: BLE001
            report.problems.append(Problem(str(path), f"cannot load: {type(error).__name__}: {_describe(error)}"))
        else:
            good.append(path)
    return good


def _within(path: Path, base: Path) -> bool:
    return path == base or path.is_relative_to(base)


# -- playbooks -------------------------------------------------------------------------------------
def _check_playbooks(settings: Settings, checked: SettingsCheck, rule_ids: set[str], report: ConfigReport) -> None:
    from soc.playbooks.model import load_playbooks

    folder = settings.playbooks.folder
    playbooks, errors = load_playbooks(folder)
    report.problems += [_text_problem(text) for text in errors]
    for playbook in sorted(playbooks.values(), key=lambda p: p.id):
        report.playbooks.append({"id": playbook.id, "title": playbook.title, "enabled": playbook.enabled,
                                 "file": playbook.path, "triggers": _triggers(playbook)})
        alerts = playbook.trigger.alerts
        for rule in alerts.rules if alerts else []:
            if rule_ids and rule not in rule_ids:
                report.warnings.append(Problem(str(playbook.path), f"playbook {playbook.id}: its trigger names rule "
                                               f"{rule}, which no rule folder has"))
    for playbook_id, values in settings.playbooks.inputs.items():
        loc = ("playbooks", "inputs", playbook_id)
        known = playbooks.get(playbook_id)
        if known is None:
            if playbook_id in _ids_of_broken(errors):
                continue  # that playbook's own problem is reported
            close = difflib.get_close_matches(playbook_id, list(playbooks), n=1)
            hint = f" — did you mean '{close[0]}'?" if close else f" (playbooks: {', '.join(sorted(playbooks))})"
            report.problems.append(Problem(_where(checked, loc), f"{dotted(loc)}: no playbook {playbook_id!r}{hint}"))
            continue
        for name in values:
            if name not in known.inputs:
                report.problems.append(Problem(
                    _where(checked, (*loc, name)), f"{dotted((*loc, name))}: playbook {playbook_id} has no input "
                    f"{name!r} (it takes: {', '.join(known.inputs) or 'none'})"))


def _ids_of_broken(errors: list[str]) -> set[str]:
    """The ids the playbook files that failed to load declare (as far as they can be read)."""
    ids = set()
    for text in errors:
        path = Path(text.partition(": ")[0])
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):
            continue
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            ids.add(raw["id"])
    return ids


def _triggers(playbook: Any) -> list[str]:
    """``alerts (4 rules)``, ``incident opened``, ``schedule '0 7 1 * *' Asia/Ho_Chi_Minh``, ``manual``."""
    trigger = playbook.trigger
    found = []
    if trigger.alerts is not None:
        a = trigger.alerts
        what = [f"{len(a.rules)} rules" if a.rules else "", f"tags {', '.join(a.tags)}" if a.tags else "",
                f"level >= {a.min_level}" if a.min_level else "", f"agencies {', '.join(a.agencies)}" if a.agencies else ""]
        found.append("alerts (" + ("; ".join(w for w in what if w) or "every alert") + ")")
    if trigger.incident is not None:
        i = trigger.incident
        found.append(f"incident {', '.join(i.events)}" + (" (serious only)" if i.serious_only else ""))
    if trigger.schedule is not None:
        found.append(f"schedule '{trigger.schedule.cron}' {trigger.schedule.timezone}")
    if trigger.manual:
        found.append("manual")
    return found


# -- report recipients -----------------------------------------------------------------------------
def _check_recipients(settings: Settings, checked: SettingsCheck, report: ConfigReport) -> None:
    for index, recipient in enumerate(settings.reporting.recipients):
        endpoint = mask_url(recipient.endpoint) if "://" in recipient.endpoint else recipient.endpoint
        report.recipients.append({"name": recipient.name, "channel": recipient.channel, "endpoint": endpoint,
                                  "profile": recipient.profile, "kinds": list(recipient.kinds)})
        if recipient.channel not in CHANNELS:
            loc = ("reporting", "recipients", index, "channel")
            report.problems.append(Problem(_where(checked, loc), f"{dotted(loc)}: unknown channel "
                                           f"{recipient.channel!r} (use {', '.join(CHANNELS)})"))
