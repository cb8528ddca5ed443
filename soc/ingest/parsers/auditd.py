"""Linux audit records (auditd text, audispd/syslog, kernel ``audit:`` printk, Microsoft
AUOMS) -> ``auditd.<key>`` plus ECS, dataset ``linux.auditd``.

``[node=N ]type=T msg=audit(EPOCH.mmm:SERIAL): k=v k="v" msg='k=v ...'``. AUOMS writes
``type=AUOMS_EXECVE audit(EPOCH:SERIAL): ...`` (no ``msg=``) and leaves values such as
``proctitle=/bin/java -Dx=y`` unquoted with spaces, so AUOMS bodies are tokenised with
values running to the next ``key=``. Lines where several records were joined keep the
first value of each key (the SYSCALL record comes first).

Every key is kept exactly as written under ``auditd.<key>`` (the inner ``msg='...'`` of
user-space records is parsed and merged the same way), so Sigma auditd rules can use
``type``, ``exe``, ``comm``, ``a0``, ``key``, ``name``... after the auditd pipeline maps them.
Added ECS: ``@timestamp`` from the audit epoch (UTC), ``auditd.type``/``auditd.sequence``/
``auditd.node``, ``event.action`` (the record type in lower case), ``event.outcome``
(``success=``/``res=``), ``process.pid``/``process.parent.pid``/``process.executable``/
``process.name``/``process.working_directory``, ``user.id`` (``uid``), ``user.audit.id``
(``auid``), ``user.effective.id`` (``euid``), ``user.name`` (``acct``, AUOMS ``user``),
``source.ip`` (``addr``), ``file.path`` (PATH ``name``), ``host.name`` (``node``), and
``process.command_line``: the hex ``proctitle`` decoded (NULs -> spaces; the hex stays in
``auditd.proctitle``) or, for EXECVE records, the ``aN`` arguments joined (also as
``process.args``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from soc.ingest.values import EMPTY_VALUES, prefixed, set_address, split_kv, to_int
from soc.model import FAILED, Parsed

HEAD = re.compile(r"\s*(?:audit: )?(?:node=(\S+) )?type=(\S+) (?:msg=)?audit\((\d+)(?:\.(\d+))?:(\d+)\):\s*")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_ARG = re.compile(r"(?<![^\s])a(\d+)=(\"[^\"]*\"|\S*)")
_INT_TARGETS = {"pid": "process.pid", "ppid": "process.parent.pid"}
_TEXT_TARGETS = {
    "exe": "process.executable",
    "comm": "process.name",
    "uid": "user.id",
    "auid": "user.audit.id",
    "euid": "user.effective.id",
    "acct": "user.name",
    "cwd": "process.working_directory",
}


def _hex_text(value: str) -> str | None:
    """auditd hex-encodes values with spaces/special characters; NULs separate argv words."""
    if len(value) < 2 or len(value) % 2 or not _HEX.fullmatch(value):
        return None
    try:
        return bytes.fromhex(value).replace(b"\x00", b" ").decode("utf-8", "replace").strip()
    except ValueError:
        return None


def parse(line: str) -> Parsed:
    """One audit record line."""
    m = HEAD.match(line)
    if not m:
        return Parsed(fields={"message": line, "soc.parse.parser": "auditd"}, status=FAILED, error="not an audit record (no type=... audit(...))")
    node, rtype, secs, frac, serial = m.groups()
    body = line[m.end():]
    pairs = split_kv(body, spaced=rtype.startswith("AUOMS"))
    inner = pairs.get("msg")
    if inner and "=" in inner:
        for key, value in split_kv(inner).items():
            pairs.setdefault(key, value.rstrip(",)"))
    fields: dict[str, Any] = {prefixed("auditd.", key): value for key, value in pairs.items()}
    fields["auditd.type"] = rtype  # the header's record type wins over joined records' type=
    fields["auditd.sequence"] = int(serial)
    fields["event.action"] = rtype.lower()
    fields["event.dataset"] = "linux.auditd"
    fields["soc.parse.parser"] = "auditd"
    if node:
        fields["auditd.node"] = node
        fields["host.name"] = node
    _ecs(rtype, pairs, fields, body)
    if not pairs:
        fields["message"] = body.strip() or line
    ts = datetime.fromtimestamp(int(secs), UTC)
    if frac:
        ts = ts.replace(microsecond=int((frac + "000000")[:6]))
    raw = f"{secs}.{frac}" if frac else secs
    return Parsed(fields=fields, timestamp=ts, raw_time=raw)


def _ecs(rtype: str, pairs: dict[str, str], fields: dict[str, Any], body: str) -> None:
    for key, target in _INT_TARGETS.items():
        number = to_int(pairs.get(key))
        if number is not None:
            fields[target] = number
    for key, target in _TEXT_TARGETS.items():
        value = pairs.get(key)
        if value and value not in EMPTY_VALUES:
            fields.setdefault(target, value)
    user = pairs.get("user") or pairs.get("UID")
    if user and user not in EMPTY_VALUES and not user.isdigit():
        fields.setdefault("user.name", user)
    addr = pairs.get("addr")
    if addr:
        set_address(fields, "source", addr)
    if rtype == "PATH" and pairs.get("name"):
        fields["file.path"] = pairs["name"]
    outcome = (pairs.get("success") or pairs.get("res") or "").lower()
    if outcome in ("yes", "success", "1"):
        fields["event.outcome"] = "success"
    elif outcome in ("no", "failed", "failure", "0"):
        fields["event.outcome"] = "failure"
    title = pairs.get("proctitle")
    if title:
        decoded = _hex_text(title) if not rtype.startswith("AUOMS") else None
        fields["process.command_line"] = decoded if decoded is not None else title
    if rtype == "EXECVE":  # AUOMS_EXECVE's aN are syscall registers, not argv
        args = _execve_args(body)
        if args:
            fields["process.args"] = args
            fields.setdefault("process.command_line", " ".join(args))
    cmdline = pairs.get("cmdline")
    if cmdline:
        fields.setdefault("process.command_line", cmdline)


def _execve_args(body: str) -> list[str]:
    """EXECVE ``aN`` arguments in order: quoted values are literal, unquoted ones are hex."""
    numbered: dict[int, str] = {}
    for index, value in _ARG.findall(body):
        n = int(index)
        if n in numbered or len(numbered) >= 256:
            continue
        if value.startswith('"'):
            numbered[n] = value[1:-1] if value.endswith('"') and len(value) >= 2 else value[1:]
        else:
            decoded = _hex_text(value)
            numbered[n] = decoded if decoded is not None else value
    return [numbered[n] for n in sorted(numbered)]
