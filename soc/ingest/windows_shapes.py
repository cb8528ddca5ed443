"""One field model for Windows events: Elastic Agent's ECS-only documents back into ``winlog.event_data``.

The model every shape is normalised into is the one Winlogbeat writes (``winlog.channel``,
``winlog.event_id``, ``winlog.provider_name``, ``winlog.event_data.<Name as Windows spells it>``,
plus ECS ``event.code``, ``process.*``, ``user.*``...), because that is what Sigma's Windows field
names map onto (``ingest/pipelines/windows.yml``) and what an analyst searching by the names in
Microsoft's documentation expects. :mod:`soc.ingest.parsers.windows` reads the shapes (EVTX,
evtx_dump JSON, Winlogbeat, NXLog, the Wazuh agent...) and derives the ECS fields from EventData.

Elastic Agent's Windows integration (and Winlogbeat 7's Sysmon/PowerShell processors) go the other
way: their ingest pipelines *rename* part of EventData into ECS and drop the original names
(``Image`` -> ``process.executable``, ``TargetFilename`` -> ``file.path``, ``ScriptBlockText`` ->
``powershell.file.script_block_text``...). A rule on ``Image|endswith`` would never see such an
event. :func:`event_data_from_ecs` puts the Windows names back, from the table below, only where
EventData lacks them: an event that carries both keeps its own EventData.

:func:`sigma_logsource` says which Sigma log source a Windows event belongs to (channel and event
id): the same table pySigma's Sysmon and Windows pipelines apply in the other direction when a rule
is compiled. ``soc rules coverage`` and the shape tests use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ECS_EVENT_DATA", "event_data_from_ecs", "sigma_logsource"]

SYSMON_CHANNEL = "microsoft-windows-sysmon/operational"
_POWERSHELL = frozenset({"microsoft-windows-powershell/operational", "powershellcore/operational"})

#: Sysmon event id -> Sigma category (pySigma's ``sysmon_generic_logsource_eventid_mapping`` inverted;
#: registry events 12/13/14 are ``registry_add``/``registry_set``/``registry_rename`` and all ``registry_event``)
SYSMON_CATEGORIES: dict[int, str] = {
    1: "process_creation", 2: "file_change", 3: "network_connection", 4: "sysmon_status", 5: "process_termination",
    6: "driver_load", 7: "image_load", 8: "create_remote_thread", 9: "raw_access_thread", 10: "process_access",
    11: "file_event", 12: "registry_add", 13: "registry_set", 14: "registry_rename", 15: "create_stream_hash",
    16: "sysmon_status", 17: "pipe_created", 18: "pipe_created", 19: "wmi_event", 20: "wmi_event", 21: "wmi_event",
    22: "dns_query", 23: "file_delete", 24: "clipboard_capture", 25: "process_tampering", 26: "file_delete_detected",
    27: "file_block_executable", 28: "file_block_shredding", 29: "file_executable_detected", 255: "sysmon_error",
}

#: channel (lower case) -> Sigma service of ``product: windows``
CHANNEL_SERVICES: dict[str, str] = {
    "security": "security", "system": "system", "application": "application",
    SYSMON_CHANNEL: "sysmon",
    "microsoft-windows-powershell/operational": "powershell", "powershellcore/operational": "powershell",
    "windows powershell": "powershell-classic",
    "microsoft-windows-windows defender/operational": "windefend",
    "microsoft-windows-taskscheduler/operational": "taskscheduler",
    "microsoft-windows-wmi-activity/operational": "wmi",
    "microsoft-windows-bits-client/operational": "bits-client",
    "microsoft-windows-dns-client/operational": "dns-client",
    "microsoft-windows-codeintegrity/operational": "codeintegrity-operational",
    "microsoft-windows-terminalservices-localsessionmanager/operational": "terminalservices-localsessionmanager",
    "microsoft-windows-windows firewall with advanced security/firewall": "firewall-as",
    "microsoft-windows-applocker/exe and dll": "applocker",
    "microsoft-windows-ntlm/operational": "ntlm",
}

_PROCESS = (("process.executable", "Image"), ("process.pid", "ProcessId"), ("process.entity_id", "ProcessGuid"))
_SOURCE = (("process.executable", "SourceImage"), ("process.pid", "SourceProcessId"), ("process.thread.id", "SourceThreadId"))
_REGISTRY = _PROCESS + (("registry.path", "TargetObject"), ("registry.data.strings", "Details"))
_FILE = _PROCESS + (("file.path", "TargetFilename"),)

#: (channel, event id) -> (ECS field, EventData name): what Elastic's ingest pipelines rename away
ECS_EVENT_DATA: dict[tuple[str, int], tuple[tuple[str, str], ...]] = {
    (SYSMON_CHANNEL, 1): _PROCESS + (
        ("process.command_line", "CommandLine"), ("process.working_directory", "CurrentDirectory"),
        ("process.parent.executable", "ParentImage"), ("process.parent.command_line", "ParentCommandLine"),
        ("process.parent.pid", "ParentProcessId"), ("process.parent.entity_id", "ParentProcessGuid"),
        ("process.pe.original_file_name", "OriginalFileName"), ("process.pe.description", "Description"),
        ("process.pe.product", "Product"), ("process.pe.company", "Company"),
        ("process.pe.file_version", "FileVersion")),
    (SYSMON_CHANNEL, 3): _PROCESS + (
        ("network.transport", "Protocol"), ("source.ip", "SourceIp"), ("source.domain", "SourceHostname"),
        ("source.port", "SourcePort"), ("destination.ip", "DestinationIp"),
        ("destination.domain", "DestinationHostname"), ("destination.port", "DestinationPort"),
        ("network.protocol", "DestinationPortName")),
    (SYSMON_CHANNEL, 5): _PROCESS,
    (SYSMON_CHANNEL, 6): (("file.path", "ImageLoaded"), ("file.code_signature.subject_name", "Signature"),
                          ("file.code_signature.status", "SignatureStatus")),
    (SYSMON_CHANNEL, 7): _PROCESS + (
        ("file.path", "ImageLoaded"), ("file.pe.original_file_name", "OriginalFileName"),
        ("file.pe.description", "Description"), ("file.pe.product", "Product"), ("file.pe.company", "Company"),
        ("file.code_signature.subject_name", "Signature"), ("file.code_signature.status", "SignatureStatus"),
        ("file.code_signature.signed", "Signed")),
    # Sysmon spells the GUID differently in these two events
    (SYSMON_CHANNEL, 8): _SOURCE + (("process.entity_id", "SourceProcessGuid"),),
    (SYSMON_CHANNEL, 10): _SOURCE + (("process.entity_id", "SourceProcessGUID"),),
    (SYSMON_CHANNEL, 11): _FILE,
    (SYSMON_CHANNEL, 12): _REGISTRY,
    (SYSMON_CHANNEL, 13): _REGISTRY,
    (SYSMON_CHANNEL, 14): _REGISTRY,
    (SYSMON_CHANNEL, 15): _FILE,
    (SYSMON_CHANNEL, 17): _PROCESS + (("file.name", "PipeName"),),
    (SYSMON_CHANNEL, 18): _PROCESS + (("file.name", "PipeName"),),
    (SYSMON_CHANNEL, 22): _PROCESS + (("dns.question.name", "QueryName"),),
    (SYSMON_CHANNEL, 23): _FILE,
    (SYSMON_CHANNEL, 26): _FILE,
    # Security: Elastic keeps EventData and copies into ECS; these cover agents that keep only ECS
    ("security", 4688): (("process.executable", "NewProcessName"), ("process.command_line", "CommandLine"),
                         ("process.parent.executable", "ParentProcessName")),
    ("security", 4624): (("source.ip", "IpAddress"), ("source.port", "IpPort")),
    ("security", 4625): (("source.ip", "IpAddress"), ("source.port", "IpPort")),
    # PowerShell: the script block and its path are renamed into powershell.file.* / file.path
    ("powershell", 4104): (("powershell.file.script_block_text", "ScriptBlockText"),
                           ("powershell.file.script_block_id", "ScriptBlockId"),
                           ("powershell.sequence", "MessageNumber"), ("powershell.total", "MessageTotal"),
                           ("file.path", "Path")),
}


def _lookup(doc: Mapping[str, Any], dotted: str) -> Any:
    """``a.b.c`` from nested objects, or from a flat ``"a.b.c"`` key (both occur in exports)."""
    if dotted in doc:
        return doc[dotted]
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _scalar(value: Any) -> str | None:
    if isinstance(value, list):  # registry.data.strings is an array; Sysmon's Details is one string
        value = value[0] if value else None
    if value is None or isinstance(value, Mapping):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text or None


def _table_channel(channel: str) -> str:
    lowered = channel.lower()
    return "powershell" if lowered in _POWERSHELL else lowered


def event_data_from_ecs(doc: Mapping[str, Any], channel: str | None, event_id: int | None,
                        event_data: Mapping[str, str]) -> dict[str, str]:
    """The EventData names an ECS-only document (Elastic Agent) lost, rebuilt from its ECS fields.

    Returns only names ``event_data`` lacks (empty for Winlogbeat documents that kept EventData).
    Sysmon's ``User`` is rebuilt from ``user.domain``/``user.name``; the ``Hashes`` string from
    ``process.hash.*`` (or ``file.hash.*`` for image loads); PowerShell 4103's ``Payload`` and
    ``ContextInfo`` from ``powershell.command.*`` and ``process.command_line``.
    """
    if not channel or event_id is None:
        return {}
    key = _table_channel(channel)
    out: dict[str, str] = {}
    for ecs_field, name in ECS_EVENT_DATA.get((key, event_id), ()):
        if name not in event_data:
            value = _scalar(_lookup(doc, ecs_field))
            if value is not None:
                out[name] = value
    if key == SYSMON_CHANNEL:
        if "User" not in event_data:
            user, domain = _scalar(_lookup(doc, "user.name")), _scalar(_lookup(doc, "user.domain"))
            if user:
                out["User"] = f"{domain}\\{user}" if domain else user
        if "Hashes" not in event_data:
            hashes = _lookup(doc, "file.hash" if event_id in (6, 7) else "process.hash")
            if isinstance(hashes, Mapping) and hashes:
                out["Hashes"] = ",".join(f"{k.upper()}={v}" for k, v in hashes.items() if isinstance(v, str))
    if key == "powershell" and event_id == 4103:
        _powershell_4103(doc, event_data, out)
    return out


def _powershell_4103(doc: Mapping[str, Any], event_data: Mapping[str, str], out: dict[str, str]) -> None:
    """Elastic parses 4103's ContextInfo and Payload into ``powershell.command.*`` and drops them."""
    if "Payload" not in event_data:
        details = _lookup(doc, "powershell.command.invocation_details")
        if isinstance(details, list) and details:
            lines = []
            for item in details:
                if isinstance(item, Mapping):
                    name, value = item.get("name"), item.get("value")
                    head = f"{item.get('type', 'CommandInvocation')}({item.get('related_command', '')})"
                    lines.append(f'{head}: "{name}"="{value}"' if name else f'{head}: "{value}"')
            out["Payload"] = "\n".join(lines)
    if "ContextInfo" not in event_data:
        parts = [(label, _scalar(_lookup(doc, field))) for label, field in (
            ("Host Application", "process.command_line"), ("Command Name", "powershell.command.name"),
            ("Command Type", "powershell.command.type"), ("Script Name", "file.path"),
            ("Command Path", "powershell.command.path"))]
        text = "\n".join(f"        {label} = {value}" for label, value in parts if value)
        if text:
            out["ContextInfo"] = text


def sigma_logsource(channel: str | None, event_id: int | None) -> dict[str, str]:
    """The Sigma log source (``product``/``category``/``service``) of a Windows event.

    Sysmon events get the category of their event id (``process_access`` for 10...), PowerShell
    4103/4104 ``ps_module``/``ps_script``; every channel its service (``security``, ``windefend``,
    ``taskscheduler``...). Unknown channels give only ``product: windows``.
    """
    out = {"product": "windows"}
    lowered = (channel or "").lower()
    service = CHANNEL_SERVICES.get(lowered)
    if service:
        out["service"] = service
    if lowered == SYSMON_CHANNEL and event_id in SYSMON_CATEGORIES:
        out["category"] = SYSMON_CATEGORIES[event_id]
    elif lowered in _POWERSHELL and event_id in (4103, 4104):
        out["category"] = "ps_module" if event_id == 4103 else "ps_script"
    elif lowered == "security" and event_id == 4688:
        out["category"] = "process_creation"
    return out
