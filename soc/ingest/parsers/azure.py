"""Azure Monitor / Log Analytics records (as exported by Sentinel, and in OTRF datasets).

- ``Type: Syslog``: the ``SyslogMessage`` is parsed by content: Sysmon-for-Linux ``<Event>``
  XML -> :func:`.windows.parse_xml_event`; auditd/AUOMS text -> :mod:`.auditd`; anything else
  -> the program extractor of ``ProcessName``. The record's ``Computer``/``HostName``,
  ``HostIP``, ``Facility``, ``SeverityLevel`` and ``ProcessName`` become ``host.name``,
  ``host.ip``, ``log.syslog.facility.name``, ``log.syslog.severity.name``, ``process.name``.
- ``Type: SecurityEvent`` (EventData as an XML string), ``WindowsEvent`` (EventData as a JSON
  string or object) and ``Event`` (``EventLog``/``Source``/``ParameterXml``): Windows events
  through :func:`.windows.build`, so they look exactly like events from any other Windows
  shape.
- any other table (``VMConnection``...): flattened under ``azure.<Type>.*`` with the obvious
  network fields mapped, dataset ``generic.json``.

Time: the event's own time (audit epoch, Sysmon ``SystemTime``, EventData ``UtcTime`` is not
used) when present, else ``EventTime``/``TimeGenerated``.
"""

from __future__ import annotations

from typing import Any

import orjson

from soc.ingest import extract as extractors
from soc.ingest.values import clean_key, set_address, to_int, to_port, transport
from soc.model import Parsed

from . import auditd, windows
from ._programs import dataset_for_program
from ._time import parse_iso
from .flatten import flatten

_WINDOWS_TYPES = frozenset({"SecurityEvent", "WindowsEvent", "Event"})


def recognise(obj: dict[str, Any]) -> Parsed | None:
    """An Azure Monitor record, or ``None``."""
    if "SourceSystem" not in obj and "TenantId" not in obj:
        return None
    kind = str(obj.get("Type") or "")
    if kind == "Syslog" or ("SyslogMessage" in obj and not kind):
        return _syslog(obj)
    if kind in _WINDOWS_TYPES or ("EventID" in obj and ("Channel" in obj or "EventLog" in obj)):
        return _windows(obj)
    return _other(obj, kind or "record")


def _s(value: Any) -> str | None:
    return None if value is None or isinstance(value, dict | list) else str(value)


def _syslog(obj: dict[str, Any]) -> Parsed:
    message = _s(obj.get("SyslogMessage")) or ""
    program = _s(obj.get("ProcessName"))
    parsed: Parsed | None = None
    if message.startswith("<Event"):
        parsed = windows.parse_xml_event(message, parser="json")
    elif auditd.HEAD.match(message):
        parsed = auditd.parse(message)
    if parsed is None:
        fields: dict[str, Any] = {"message": message, "event.dataset": dataset_for_program(program)}
        extractors.extract(program.lower() if program else None, message, fields)
        parsed = Parsed(fields=fields)
    f = parsed.fields
    f["soc.parse.parser"] = "json"
    host = _s(obj.get("HostName")) or _s(obj.get("Computer"))
    if host:
        f["host.name"] = host
    if obj.get("HostIP"):
        set_address(f, "host", _s(obj.get("HostIP")))
    if program:
        f.setdefault("process.name", program)
        f["log.syslog.appname"] = program
    if obj.get("Facility"):
        f["log.syslog.facility.name"] = str(obj["Facility"])
    if obj.get("SeverityLevel"):
        f["log.syslog.severity.name"] = str(obj["SeverityLevel"])
    f.setdefault("message", message)
    if parsed.timestamp is None:
        raw = _s(obj.get("EventTime")) or _s(obj.get("TimeGenerated"))
        parsed.timestamp, parsed.raw_time = (parse_iso(raw) if raw else None), raw
    return parsed


def _event_data(obj: dict[str, Any]) -> dict[str, str]:
    data = obj.get("EventData")
    if data is None:
        data = obj.get("ParameterXml")
    if isinstance(data, dict):
        return {str(k): "" if v is None else str(v) for k, v in data.items()}
    if not isinstance(data, str) or not data:
        return {}
    text = data.strip()
    if text.startswith("{"):
        try:
            decoded = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {"Data": text}
        if isinstance(decoded, dict):
            return {str(k): "" if v is None else v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in decoded.items()}
    if "<Data" in text:
        return windows.event_data_from_xml(text)
    return {"Data": text}


def _windows(obj: dict[str, Any]) -> Parsed:
    system = windows._System(
        channel=_s(obj.get("Channel") or obj.get("EventLog")),
        event_id=to_int(_s(obj.get("EventID"))),
        provider_name=_s(obj.get("Provider") or obj.get("EventSourceName") or obj.get("Source")),
        computer=_s(obj.get("Computer")),
        record_id=to_int(_s(obj.get("EventRecordId") or obj.get("EventRecordID"))),
        time=_s(obj.get("TimeGenerated") or obj.get("TimeCreated")),
        level=_s(obj.get("EventLevelName") or obj.get("Level")),
        task=_s(obj.get("Task")),
        keywords=_s(obj.get("Keywords")),
        message=_s(obj.get("RenderedDescription") or obj.get("Activity")),
    )
    parsed = windows.build(system, _event_data(obj))
    if obj.get("Type"):
        parsed.fields["azure.type"] = str(obj["Type"])
    return parsed


def _other(obj: dict[str, Any], kind: str) -> Parsed:
    fields: dict[str, Any] = {"event.dataset": "generic.json", "soc.parse.parser": "json", "azure.type": kind}
    flatten(obj, f"azure.{clean_key(kind)}.", fields)
    set_address(fields, "source", _s(obj.get("SourceIp")))
    set_address(fields, "destination", _s(obj.get("DestinationIp")))
    port = to_port(obj.get("DestinationPort"))
    if port is not None:
        fields["destination.port"] = port
    proto = transport(_s(obj.get("Protocol")))
    if proto:
        fields["network.transport"] = proto
    if obj.get("ProcessName"):
        fields["process.name"] = str(obj["ProcessName"])
    if obj.get("Computer"):
        fields["host.name"] = str(obj["Computer"])
    raw = _s(obj.get("TimeGenerated"))
    return Parsed(fields=fields, timestamp=parse_iso(raw) if raw else None, raw_time=raw)
