"""Windows event records in every shape we receive them -> one set of ``winlog.*`` + ECS fields.

Shapes (each turned into the same :class:`_System` + EventData dict, then :func:`build`):

- Winlogbeat / Elastic Agent ECS JSON: ``{"winlog": {"channel", "event_id", "event_data"...}}``;
  what Elastic Agent's pipelines renamed into ECS (``process.*``, ``file.path``...) is put back
  under the EventData names (:mod:`soc.ingest.windows_shapes`);
- evtx_dump / the ``evtx`` PyPI library: ``{"Event": {"System": {...}, "EventData": {...}}}``
  (attributes under ``#attributes``; xmltodict-style ``@Name`` is read too);
- NXLog ``im_msvistalog`` flat JSON: ``EventID``, ``Channel``, ``Hostname``, ``SourceName`` and
  the EventData names as top-level keys;
- the Wazuh agent: ``{"win": {"system": {...}, "eventdata": {...}}}`` with camelCase names;
- Azure Monitor ``SecurityEvent`` / ``WindowsEvent`` records (EventData as an XML or JSON
  string), see :mod:`.azure`;
- event XML (``<Event><System>...<EventData><Data Name=..>``), e.g. Sysmon for Linux inside a
  syslog message: :func:`parse_xml_event`.

Decisions:

- ``winlog.event_data.<Name>`` uses the names exactly as Windows spells them, so Sigma field
  names (``TargetUserName``, ``Image``, ``CommandLine``...) match after the Windows pipeline.
  Wazuh lower-cases the first letter (``targetUserName``); we upper-case it back. Wazuh
  also escapes backslashes and quotes twice in EventData (``C:\\\\Windows``); we undo one
  level so ``Image|endswith: '\\cmd.exe'`` matches.
- EventData values are strings, as Winlogbeat stores them (XML EventData is text; the
  ``evtx`` library returns some as numbers), except the names ``ingest/fields.yml`` types as
  numbers (``LogonType``, ``ProcessId``, ports...), which become ints (hex ``0x464`` too; a
  value that is not a number, such as ``-``, is left out: the store would reject it). One
  type per field keeps stores and rules consistent.
- ``user.name``: for logon events (4624, 4625, 4634, 4648, 4672, 476x/477x...) the
  ``TargetUserName``; for other events with both a subject and a target (account
  management) the ``SubjectUserName`` with ``user.target.name`` = ``TargetUserName``;
  Sysmon's ``User`` (``DOMAIN\\name``) is split into ``user.domain``/``user.name``.
- Dataset from the channel: ``windows.security|sysmon|system|powershell|application|other``;
  provider ``Linux-Sysmon`` -> ``linux.sysmon.process_creation`` (EventID 1),
  ``network_connection`` (3), ``file_event`` (11), else ``linux.sysmon.other``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from soc.ingest.values import EMPTY_VALUES, as_ip, set_address, to_int, to_port, transport
from soc.ingest.windows_shapes import event_data_from_ecs
from soc.model import PARTIAL, Parsed

from ._programs import numeric_event_data
from ._time import parse_iso

_LOGON_IDS = frozenset({4624, 4625, 4634, 4647, 4648, 4672, 4768, 4769, 4770, 4771, 4776, 4778, 4779, 4800, 4801})
_SUCCESS_KEYWORDS = "0x8020000000000000"
_FAILURE_KEYWORDS = "0x8010000000000000"
_POWERSHELL_CHANNELS = frozenset({"microsoft-windows-powershell/operational", "windows powershell", "powershellcore/operational"})
_LINUX_SYSMON = {1: "linux.sysmon.process_creation", 3: "linux.sysmon.network_connection", 11: "linux.sysmon.file_event"}
_WAZUH_UNESCAPE = re.compile(r"\\([\\\"])")


@dataclass(slots=True)
class _System:
    """The System part of an event, whatever shape it came in."""

    channel: str | None = None
    event_id: int | None = None
    provider_name: str | None = None
    provider_guid: str | None = None
    computer: str | None = None
    record_id: int | None = None
    time: str | None = None
    level: str | None = None
    task: str | None = None
    opcode: str | None = None
    keywords: str | None = None
    version: str | None = None
    pid: int | None = None
    thread_id: int | None = None
    user_id: str | None = None
    message: str | None = None
    outcome_hint: str | None = None


def dataset_for(channel: str | None, provider: str | None, event_id: int | None) -> str:
    """The ``event.dataset`` of a Windows (or Sysmon for Linux) event."""
    if (provider or "").startswith("Linux-Sysmon") or (channel or "").startswith("Linux-Sysmon"):
        return _LINUX_SYSMON.get(event_id or -1, "linux.sysmon.other")
    lowered = (channel or "").lower()
    if lowered == "security":
        return "windows.security"
    if lowered == "microsoft-windows-sysmon/operational":
        return "windows.sysmon"
    if lowered == "system":
        return "windows.system"
    if lowered in _POWERSHELL_CHANNELS:
        return "windows.powershell"
    if lowered == "application":
        return "windows.application"
    return "windows.other"


def _text(value: Any) -> str | None:
    """A scalar or ``{"#text": ..}`` node as text; ``None`` for empty/absent."""
    if type(value) is str:
        return value
    if isinstance(value, dict):
        value = value.get("#text", value.get("$", None))
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if v is not None and not isinstance(v, dict)) or None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _attr(node: Any, name: str) -> Any:
    """Attribute ``name`` of an evtx (``#attributes``) or xmltodict (``@name``) node."""
    if not isinstance(node, dict):
        return None
    attrs = node.get("#attributes")
    if isinstance(attrs, dict) and name in attrs:
        return attrs[name]
    return node.get("@" + name)


def _event_data_items(node: Any) -> dict[str, str]:
    """EventData/UserData node -> {Name: text}, for the evtx, xmltodict and plain shapes."""
    out: dict[str, str] = {}
    if not isinstance(node, dict):
        text = _text(node)
        if text:
            out["Data"] = text
        return out
    data = node.get("Data")
    if data is not None and len(node) <= 2:  # {"Data": [...]} (+ "#attributes")
        items = data if isinstance(data, list) else [data]
        for index, item in enumerate(items):
            name = _attr(item, "Name")
            text = _text(item)
            if name:
                out[str(name)] = text if text is not None else ""
            elif text is not None:
                out[f"param{index + 1}"] = text
        return out
    for key, value in node.items():
        if key.startswith(("#", "@", "xmlns")):
            continue
        if isinstance(value, dict) and "#text" not in value and "@Name" not in value:
            for sub_key, sub_value in value.items():  # UserData: {"EventXML": {...}}
                if not sub_key.startswith(("#", "@", "xmlns")):
                    text = _text(sub_value)
                    if text is not None:
                        out[sub_key] = text
            continue
        text = _text(value)
        out[key] = text if text is not None else ""
    return out


def build(system: _System, event_data: dict[str, str], user_data: dict[str, str] | None = None, parser: str = "json") -> Parsed:
    """The shared ECS/winlog mapping for every shape."""
    f: dict[str, Any] = {"soc.parse.parser": parser}
    eid = system.event_id
    if system.channel:
        f["winlog.channel"] = system.channel
    if eid is not None:
        f["winlog.event_id"] = eid
        f["event.code"] = str(eid)
    for key, value in (
        ("winlog.provider_name", system.provider_name),
        ("winlog.provider_guid", system.provider_guid),
        ("winlog.computer_name", system.computer),
        ("winlog.level", system.level),
        ("winlog.task", system.task),
        ("winlog.opcode", system.opcode),
        ("winlog.keywords", system.keywords),
        ("winlog.version", system.version),
        ("winlog.user.identifier", system.user_id),
    ):
        if value not in (None, ""):
            f[key] = value
    if system.record_id is not None:
        f["winlog.record_id"] = system.record_id
    if system.pid is not None:
        f["winlog.process.pid"] = system.pid
    if system.thread_id is not None:
        f["winlog.process.thread.id"] = system.thread_id
    if system.computer:
        f["host.name"] = system.computer
    if system.message:
        f["message"] = system.message
    numeric = numeric_event_data()
    for name, value in event_data.items():
        if name in numeric:  # typed as numbers in ingest/fields.yml: "0x464" -> 1124, "-" dropped
            number = to_int(value)
            if number is None:
                continue
            f["winlog.event_data." + name] = number
        else:
            f["winlog.event_data." + name] = value
    if user_data:
        for name, value in user_data.items():
            f["winlog.user_data." + name] = value
    _ecs(f, eid, event_data)
    if system.keywords == _FAILURE_KEYWORDS or system.outcome_hint == "failure":
        f["event.outcome"] = "failure"
    elif system.keywords == _SUCCESS_KEYWORDS or system.outcome_hint == "success":
        f["event.outcome"] = "success"
    f["event.dataset"] = dataset_for(system.channel, system.provider_name, eid)
    ts = parse_iso(system.time) if system.time else None
    return Parsed(fields=f, timestamp=ts, raw_time=system.time)


def _set_user(f: dict[str, Any], name: str | None, domain: str | None, prefix: str = "user") -> None:
    if name and name not in EMPTY_VALUES:
        f[prefix + ".name"] = name
        if domain and domain not in EMPTY_VALUES:
            f[prefix + ".domain"] = domain


def _ecs(f: dict[str, Any], eid: int | None, ed: dict[str, str]) -> None:  # noqa: C901  (one flat mapping)
    target, subject = ed.get("TargetUserName"), ed.get("SubjectUserName")
    target_ok = bool(target) and target not in EMPTY_VALUES
    subject_ok = bool(subject) and subject not in EMPTY_VALUES
    if target_ok and (eid in _LOGON_IDS or not subject_ok):
        _set_user(f, target, ed.get("TargetDomainName"))
    elif subject_ok:
        _set_user(f, subject, ed.get("SubjectDomainName"))
        if target_ok:
            _set_user(f, target, ed.get("TargetDomainName"), "user.target")
    elif ed.get("User"):
        domain, sep, name = ed["User"].rpartition("\\")
        _set_user(f, name, domain if sep else None)
    for key, prefix in (("IpAddress", "source"), ("SourceIp", "source"), ("SourceAddress", "source"), ("DestinationIp", "destination"), ("DestAddress", "destination")):
        value = ed.get(key)
        if value and value not in EMPTY_VALUES and as_ip(value):
            set_address(f, prefix, value)
    for key, target_field in (("IpPort", "source.port"), ("SourcePort", "source.port"), ("DestinationPort", "destination.port"), ("DestPort", "destination.port")):
        port = to_port(ed.get(key))
        if port is not None:
            f.setdefault(target_field, port)
    for key, prefix in (("SourceHostname", "source"), ("DestinationHostname", "destination")):
        value = ed.get(key)
        if value and value not in EMPTY_VALUES:
            f[prefix + ".domain"] = value
    proto = ed.get("Protocol")
    if proto:
        name = transport(proto)
        if name:
            f["network.transport"] = name
    exe = ed.get("Image") or ed.get("NewProcessName") or ed.get("ProcessName")
    if exe and exe not in EMPTY_VALUES:
        f["process.executable"] = exe
        f["process.name"] = exe.replace("\\", "/").rsplit("/", 1)[-1]
    if ed.get("CommandLine"):
        f["process.command_line"] = ed["CommandLine"]
    if "NewProcessId" in ed:
        pid, parent_pid = to_int(ed.get("NewProcessId")), to_int(ed.get("ProcessId"))
    else:
        pid, parent_pid = to_int(ed.get("ProcessId") or ed.get("ProcessID")), to_int(ed.get("ParentProcessId"))
    if pid is not None:
        f["process.pid"] = pid
    if parent_pid is not None:
        f["process.parent.pid"] = parent_pid
    parent = ed.get("ParentImage") or ed.get("ParentProcessName")
    if parent and parent not in EMPTY_VALUES:
        f["process.parent.executable"] = parent
    if ed.get("ParentCommandLine"):
        f["process.parent.command_line"] = ed["ParentCommandLine"]
    if ed.get("CurrentDirectory"):
        f["process.working_directory"] = ed["CurrentDirectory"]
    if ed.get("TargetFilename"):
        f["file.path"] = ed["TargetFilename"]
    if ed.get("TargetObject"):
        f["registry.path"] = ed["TargetObject"]
    if ed.get("QueryName"):
        f["dns.question.name"] = ed["QueryName"]


# ---- shapes ---------------------------------------------------------------------------------


def from_winlogbeat(obj: dict[str, Any]) -> Parsed:
    """Winlogbeat/Elastic Agent ECS document (``winlog`` object)."""
    wl = obj["winlog"]
    process = wl.get("process") if isinstance(wl.get("process"), dict) else {}
    thread = process.get("thread") if isinstance(process.get("thread"), dict) else {}
    user = wl.get("user") if isinstance(wl.get("user"), dict) else {}
    system = _System(
        channel=_text(wl.get("channel")),
        event_id=to_int(_text(wl.get("event_id"))),
        provider_name=_text(wl.get("provider_name")),
        provider_guid=_text(wl.get("provider_guid")),
        computer=_text(wl.get("computer_name")) or _text((obj.get("host") or {}).get("name") if isinstance(obj.get("host"), dict) else None),
        record_id=to_int(_text(wl.get("record_id"))),
        time=_text(obj.get("@timestamp")) or _text((obj.get("event") or {}).get("created") if isinstance(obj.get("event"), dict) else None),
        level=_text(wl.get("level")),
        task=_text(wl.get("task")),
        opcode=_text(wl.get("opcode")),
        keywords=_text(wl.get("keywords")[0]) if isinstance(wl.get("keywords"), list) and wl["keywords"] else _text(wl.get("keywords")),
        version=_text(wl.get("version")),
        pid=to_int(process.get("pid")),
        thread_id=to_int(thread.get("id")),
        user_id=_text(user.get("identifier")),
        message=_text(obj.get("message")),
        outcome_hint=_text((obj.get("event") or {}).get("outcome")) if isinstance(obj.get("event"), dict) else None,
    )
    if system.event_id is None and isinstance(obj.get("event"), dict):  # Elastic Agent: event.code only
        system.event_id = to_int(_text(obj["event"].get("code")))
    event_data = _event_data_items(wl.get("event_data") or {})
    # Elastic Agent renames part of EventData into ECS (process.*, file.path...): put the names back
    event_data.update(event_data_from_ecs(obj, system.channel, system.event_id, event_data))
    parsed = build(system, event_data, _event_data_items(wl.get("user_data") or {}) or None)
    for key in ("name", "domain", "type"):
        value = _text(user.get(key))
        if value:
            parsed.fields["winlog.user." + key] = value
    return parsed


def from_evtx(obj: dict[str, Any]) -> Parsed:
    """evtx_dump / ``evtx`` library / xmltodict record: ``{"Event": {"System": .., "EventData": ..}}``."""
    event = obj["Event"]
    sysnode = event.get("System") if isinstance(event.get("System"), dict) else {}
    provider = sysnode.get("Provider")
    execution = sysnode.get("Execution")
    security = sysnode.get("Security")
    time_node = sysnode.get("TimeCreated")
    rendering = event.get("RenderingInfo")
    system = _System(
        channel=_text(sysnode.get("Channel")),
        event_id=to_int(_text(sysnode.get("EventID"))),
        provider_name=_text(_attr(provider, "Name")),
        provider_guid=_text(_attr(provider, "Guid")),
        computer=_text(sysnode.get("Computer")),
        record_id=to_int(_text(sysnode.get("EventRecordID"))),
        time=_text(_attr(time_node, "SystemTime")),
        level=_text(sysnode.get("Level")),
        task=_text(sysnode.get("Task")),
        opcode=_text(sysnode.get("Opcode")),
        keywords=_text(sysnode.get("Keywords")),
        version=_text(sysnode.get("Version")),
        pid=to_int(_text(_attr(execution, "ProcessID"))),
        thread_id=to_int(_text(_attr(execution, "ThreadID"))),
        user_id=_text(_attr(security, "UserID")),
        message=_text(rendering.get("Message")) if isinstance(rendering, dict) else _text(obj.get("message")),
    )
    user_data = _event_data_items(event["UserData"]) if isinstance(event.get("UserData"), dict) else None
    return build(system, _event_data_items(event.get("EventData")), user_data)


_PASCAL: dict[str, str] = {}
_SLOT = "\ue000"  # a private-use character standing in for an escaped backslash


def _pascal(name: str) -> str:
    """Wazuh's ``targetUserName`` -> Windows' ``TargetUserName`` (cached: few distinct names)."""
    hit = _PASCAL.get(name)
    if hit is None:
        hit = name[:1].upper() + name[1:] if name[:1].islower() and not name.startswith(("param", "data")) else name
        if len(_PASCAL) < 4096:
            _PASCAL[name] = hit
    return hit


def _wazuh_value(value: Any) -> str:
    """Undo Wazuh's second level of escaping: ``\\\\`` -> ``\\`` and ``\\"`` -> ``"``."""
    text = _text(value) or ""
    if "\\" not in text:
        return text
    if _SLOT in text:
        return _WAZUH_UNESCAPE.sub(lambda m: m.group(1), text)
    return text.replace("\\\\", _SLOT).replace('\\"', '"').replace(_SLOT, "\\")


def from_wazuh(obj: dict[str, Any]) -> Parsed:
    """Wazuh agent eventchannel JSON: ``{"win": {"system": {...}, "eventdata": {...}}}``."""
    win = obj["win"]
    sysnode = win.get("system") if isinstance(win.get("system"), dict) else {}
    message = _text(sysnode.get("message"))
    if message and len(message) >= 2 and message[0] == '"':
        message = message[1:-1] if message.endswith('"') else message[1:]
    severity = (_text(sysnode.get("severityValue")) or "").upper()
    system = _System(
        channel=_text(sysnode.get("channel")),
        event_id=to_int(_text(sysnode.get("eventID"))),
        provider_name=_text(sysnode.get("providerName")),
        provider_guid=_text(sysnode.get("providerGuid")),
        computer=_text(sysnode.get("computer")),
        record_id=to_int(_text(sysnode.get("eventRecordID"))),
        time=_text(sysnode.get("systemTime")),
        level=_text(sysnode.get("level")),
        task=_text(sysnode.get("task")),
        opcode=_text(sysnode.get("opcode")),
        keywords=_text(sysnode.get("keywords")),
        version=_text(sysnode.get("version")),
        pid=to_int(_text(sysnode.get("processID"))),
        thread_id=to_int(_text(sysnode.get("threadID"))),
        user_id=_text(sysnode.get("securityUserID")),
        message=message,
        outcome_hint="failure" if severity == "AUDIT_FAILURE" else "success" if severity == "AUDIT_SUCCESS" else None,
    )
    eventdata = win.get("eventdata") if isinstance(win.get("eventdata"), dict) else {}
    ed = {_pascal(k): _wazuh_value(v) for k, v in eventdata.items()}
    user_data: dict[str, str] = {}
    for section, node in win.items():
        if section not in ("system", "eventdata") and isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(value, dict):
                    user_data[_pascal(key)] = _wazuh_value(value)
    parsed = build(system, ed, user_data or None)
    if severity:
        parsed.fields["log.level"] = severity.lower()
    return parsed


_NXLOG_SYSTEM = frozenset(
    {
        "EventTime", "Hostname", "Keywords", "EventType", "SeverityValue", "Severity", "EventID", "SourceName",
        "ProviderGuid", "Version", "Task", "OpcodeValue", "RecordNumber", "ActivityID", "RelatedActivityID",
        "ProcessID", "ThreadID", "Channel", "Category", "Opcode", "Message", "EventReceivedTime",
        "SourceModuleName", "SourceModuleType", "Domain", "AccountName", "UserID", "AccountType", "Level",
        "ERROR_EVT_UNRESOLVED", "EventData", "Qualifiers",
    }
)


def from_nxlog(obj: dict[str, Any]) -> Parsed:
    """NXLog ``im_msvistalog`` JSON: System keys and EventData names side by side."""
    event_type = (_text(obj.get("EventType")) or "").upper()
    system = _System(
        channel=_text(obj.get("Channel")),
        event_id=to_int(_text(obj.get("EventID"))),
        provider_name=_text(obj.get("SourceName")),
        provider_guid=_text(obj.get("ProviderGuid")),
        computer=_text(obj.get("Hostname")),
        record_id=to_int(_text(obj.get("RecordNumber"))),
        time=_text(obj.get("EventTime")),
        level=_text(obj.get("Severity")),
        task=_text(obj.get("Category") or obj.get("Task")),
        opcode=_text(obj.get("Opcode")),
        keywords=_text(obj.get("Keywords")),
        version=_text(obj.get("Version")),
        pid=to_int(_text(obj.get("ProcessID"))),
        thread_id=to_int(_text(obj.get("ThreadID"))),
        user_id=_text(obj.get("UserID")),
        message=_text(obj.get("Message")),
        outcome_hint="failure" if event_type == "AUDIT_FAILURE" else "success" if event_type == "AUDIT_SUCCESS" else None,
    )
    ed: dict[str, str] = {}
    for key, value in obj.items():
        if key not in _NXLOG_SYSTEM and not isinstance(value, dict | list):
            text = _text(value)
            if text is not None:
                ed[key] = text
    if isinstance(obj.get("EventData"), dict):
        ed.update(_event_data_items(obj["EventData"]))
    parsed = build(system, ed)
    if obj.get("AccountName") and "user.name" not in parsed.fields:
        _set_user(parsed.fields, _text(obj.get("AccountName")), _text(obj.get("Domain")))
    return parsed


# ---- event XML ------------------------------------------------------------------------------

_XML_DATA = re.compile(r"<Data(?:\s+Name\s*=\s*['\"]([^'\"]*)['\"])?\s*(?:/>|>([^<]*)(?:</Data>)?)")
_XML_TAGS = re.compile(r"<(EventID|Version|Level|Task|Opcode|Keywords|EventRecordID|Channel|Computer)(?:\s[^>]*)?>([^<]*)</\1>")
_XML_ATTR = re.compile(r"<(Provider|TimeCreated|Execution|Security)\b([^>]*?)/?>")
_XML_ATTRS = re.compile(r"(\w+)\s*=\s*['\"]([^'\"]*)['\"]")
_XML_LEAF = re.compile(r"<(\w+)>([^<]*)</\1>")
_XML_SECTION = re.compile(r"<(EventData|UserData)\b[^>]*>(.*?)(?:</\1>|$)", re.S)


def _unxml(text: str) -> str:
    return html.unescape(text) if "&" in text else text


def event_data_from_xml(text: str) -> dict[str, str]:
    """``<EventData><Data Name="X">v</Data>...`` (or a bare run of Data elements) -> dict."""
    out: dict[str, str] = {}
    for index, (name, value) in enumerate(_XML_DATA.findall(text)):
        out[name or f"param{index + 1}"] = _unxml(value or "")
        if len(out) >= 512:
            break
    return out


def parse_xml_event(text: str, parser: str = "xml") -> Parsed | None:
    """A Windows-schema ``<Event>`` XML document (Windows, or Sysmon for Linux over syslog).

    Regexes rather than an XML parser: the schema is flat and fixed, this is several times
    faster, and no entity/DTD processing can be triggered by hostile input.
    """
    if "<System" not in text:
        return None
    end = text.find("</System>")
    system_xml = text[: end if end > 0 else 4096]
    values: dict[str, str] = {}
    for name, value in _XML_TAGS.findall(system_xml):
        values.setdefault(name, _unxml(value.strip()))
    attrs: dict[str, dict[str, str]] = {}
    for tag, body in _XML_ATTR.findall(system_xml):
        attrs.setdefault(tag, dict(_XML_ATTRS.findall(body)))
    system = _System(
        channel=values.get("Channel"),
        event_id=to_int(values.get("EventID")),
        provider_name=attrs.get("Provider", {}).get("Name"),
        provider_guid=attrs.get("Provider", {}).get("Guid"),
        computer=values.get("Computer"),
        record_id=to_int(values.get("EventRecordID")),
        time=attrs.get("TimeCreated", {}).get("SystemTime"),
        level=values.get("Level"),
        task=values.get("Task"),
        opcode=values.get("Opcode"),
        keywords=values.get("Keywords"),
        version=values.get("Version"),
        pid=to_int(attrs.get("Execution", {}).get("ProcessID")),
        thread_id=to_int(attrs.get("Execution", {}).get("ThreadID")),
        user_id=attrs.get("Security", {}).get("UserID") or attrs.get("Security", {}).get("UserId"),
    )
    event_data: dict[str, str] = {}
    user_data: dict[str, str] = {}
    for section, body in _XML_SECTION.findall(text):
        if section == "EventData":
            event_data.update(event_data_from_xml(body))
        else:
            user_data.update({k: _unxml(v) for k, v in _XML_LEAF.findall(body)})
    parsed = build(system, event_data, user_data or None, parser=parser)
    if "</Event>" not in text[-64:]:
        parsed.degrade(PARTIAL, "event XML is cut short (no closing </Event>); the fields before the cut are kept")
    return parsed


def recognise(obj: dict[str, Any]) -> Parsed | None:
    """The Windows shape of ``obj``, parsed; ``None`` when it is not a Windows event."""
    if isinstance(obj.get("winlog"), dict):
        return from_winlogbeat(obj)
    if isinstance(obj.get("Event"), dict) and isinstance(obj["Event"].get("System"), dict):
        return from_evtx(obj)
    if isinstance(obj.get("win"), dict) and ("system" in obj["win"] or "eventdata" in obj["win"]):
        return from_wazuh(obj)
    if "EventID" in obj and ("SourceName" in obj or "Channel" in obj) and ("Hostname" in obj or "EventTime" in obj):
        return from_nxlog(obj)
    return None


# ---- OSSEC/Wazuh legacy "WinEvtLog:" text ----------------------------------------------------

_LEGACY = re.compile(r"([^:]+): ([A-Z_]+)\((\d+)\): (.*?): (.*?): (.*?): ([^:\s]+): (.*)$", re.S)
_LEGACY_PAIR = re.compile(r"(?:^|  )([A-Z][A-Za-z]+): (.*?)(?=  [A-Z][A-Za-z]+: |$)", re.S)


def parse_winevtlog_legacy(message: str) -> Parsed | None:
    """``Channel: TYPE(EventID): Source: User: Domain: Computer: Message`` (the text format of
    the old OSSEC Windows agent, syslog tag ``WinEvtLog``). Sysmon messages (``Key: value``
    separated by two spaces) also give their EventData."""
    m = _LEGACY.match(message)
    if not m:
        return None
    channel, kind, eid, source, user, domain, computer, text = m.groups()
    event_data: dict[str, str] = {}
    if "Sysmon" in channel:
        event_data = {k: v.strip() for k, v in _LEGACY_PAIR.findall(text)}
    system = _System(
        channel=channel.strip(),
        event_id=to_int(eid),
        provider_name=source,
        computer=computer,
        message=text,
        outcome_hint="failure" if kind == "AUDIT_FAILURE" else "success" if kind == "AUDIT_SUCCESS" else None,
    )
    parsed = build(system, event_data, parser="winevtlog")
    if "user.name" not in parsed.fields and user not in ("(no user)", "N/A"):
        _set_user(parsed.fields, user, None if domain == "no domain" else domain)
    parsed.fields["log.level"] = kind.lower()
    return parsed
