"""The data of the console benchmark (benchmarks/console.py): 50 agencies, 300 rules, N alerts
with the events they point to, their triage history, incidents with notes and tasks -- the same
data, deterministic from one seed, written to SQLite and to OpenSearch through each store's
bulk path.

**What it looks like.** Alerts span the 30 days before ``now`` (more by day than by night),
spread over the agencies and rules with a long tail (a few agencies and rules have most of
them, as in a real province). 85% come from single-event rules (one event), 15% from
correlations (2-6 events, with a ``group``). Statuses: 55% open (``new``), 15% acknowledged
(half of them assigned), 30% closed with a reason; each change is in ``alert_history``. One
incident per 200 alerts (1 to 1,000 alerts each, lognormal; two of 1,000). 60% of the alerts are
about a system of the asset inventory (``asset.level`` 1-5, ``risk`` as :mod:`soc.alerts.priority`
computes it). Events carry host,
user, source and destination address, action, outcome, process, a message in Vietnamese and
the raw line.

**Writes.** Events go through ``write_events`` (the stores' bulk path). Documents have no bulk
call in the store protocol, so they are written the way each store writes documents but many at
a time: SQLite ``INSERT`` into ``docs`` with ``executemany`` in one transaction per batch (the
triggers of the field tables fill them as for any write), OpenSearch ``_bulk`` ``create`` into
the collection's index with the ``@soc_id`` copy that ``create`` adds.
"""

from __future__ import annotations

import hashlib
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from soc.agencies import Agency, AgencyTree
from soc.alerts.priority import SEVERITY_RANK
from soc.model import iso

SEED = 11
DAYS = 30
AGENCIES = 50
RULES = 300
#: one alert in this many belongs to an incident
PER_INCIDENT = 200
BATCH = 20_000
ANALYSTS = ("lan.nguyen", "minh.tran", "huong.le", "duc.pham", "thao.vo", "quang.dang")
LEVELS = (("low", 0.25), ("medium", 0.40), ("high", 0.28), ("critical", 0.07))
CLOSE_REASONS = (("false_positive", 0.45), ("benign", 0.25), ("true_positive", 0.2), ("duplicate", 0.1))
#: (dataset, process, action, outcome, message, raw line, ATT&CK tag, Vietnamese title)
KINDS = (
    ("linux.auth", "sshd", "ssh_login", "failure", "Đăng nhập SSH thất bại cho tài khoản {user} từ {ip} (sai mật khẩu)",
     "{ts} {host} sshd[{pid}]: Failed password for {user} from {ip} port {port} ssh2", "attack.t1110",
     "Dò mật khẩu SSH"),
    ("linux.auth", "sshd", "ssh_login", "success", "Đăng nhập SSH thành công: {user} từ {ip} ngoài giờ làm việc",
     "{ts} {host} sshd[{pid}]: Accepted password for {user} from {ip} port {port} ssh2", "attack.t1078",
     "Đăng nhập ngoài giờ"),
    ("windows.security", "lsass.exe", "logon-failed", "failure", "Đăng nhập Windows thất bại: {user} trên {host}, nguồn {ip}",
     "EventID=4625 TargetUserName={user} WorkstationName={host} IpAddress={ip}", "attack.t1110",
     "Đăng nhập Windows thất bại liên tiếp"),
    ("nginx.access", "nginx", "http_request", "failure", "Truy cập bị chặn tới cổng thông tin điện tử /quan-tri từ {ip}",
     '{ip} - - [{ts}] "GET /quan-tri/../../etc/passwd HTTP/1.1" 403 153 "-" "sqlmap/1.7"', "attack.t1190",
     "Khai thác ứng dụng web"),
    ("windows.sysmon", "powershell.exe", "process_start", "success",
     "Phát hiện tiến trình đáng ngờ powershell -enc trên máy {host} của người dùng {user}",
     "EventID=1 Image=C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe User={user}", "attack.t1059",
     "PowerShell mã hoá"),
    ("fortigate.traffic", "fortigate", "deny", "failure", "Tường lửa chặn kết nối từ {ip} tới {dst}:445 (dò quét)",
     "date={ts} devname={host} srcip={ip} dstip={dst} dstport=445 action=deny", "attack.t1046", "Dò quét cổng SMB"),
    ("linux.audit", "sudo", "privilege_change", "success", "Người dùng {user} được cấp quyền quản trị trên {host}",
     "type=USER_CMD msg=audit: uid=1000 auid={user} cmd=usermod -aG sudo {user}", "attack.t1098",
     "Thay đổi quyền quản trị"),
    ("mail.postfix", "postfix", "mail_received", "success", "Thư điện tử có tệp đính kèm độc hại gửi tới {user}",
     "{ts} {host} postfix/smtpd[{pid}]: NOQUEUE: reject: from={ip} to=<{user}@tinh.gov.vn>", "attack.t1566",
     "Thư lừa đảo có mã độc"),
)
_AGENCY_NAMES = ("Sở Tài chính", "Sở Nội vụ", "Sở Y tế", "Sở Giáo dục và Đào tạo", "Sở Xây dựng",
                 "Sở Công Thương", "Sở Nông nghiệp và Môi trường", "Sở Khoa học và Công nghệ", "Sở Tư pháp",
                 "Sở Văn hoá, Thể thao và Du lịch", "Sở Dân tộc và Tôn giáo", "Sở Ngoại vụ",
                 "Thanh tra tỉnh", "Ban Quản lý các khu công nghiệp", "Đài Phát thanh và Truyền hình",
                 "Trung tâm Phục vụ hành chính công", "Bảo hiểm xã hội tỉnh", "Kho bạc Nhà nước tỉnh",
                 "Cục Thuế tỉnh")


def _hex(*parts: object) -> str:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).hexdigest()


def alert_id(i: int) -> str:
    return _hex("alert", i)


def incident_id(j: int) -> str:
    return f"inc-{_hex('incident', j)[:16]}"


def agency_tree() -> AgencyTree:
    """The province, 19 departments and 30 communes (50 agencies)."""
    agencies = [Agency(id="tinh", name="Văn phòng UBND tỉnh", level="province", contact_email=("soc@tinh.gov.vn",))]
    for k, name in enumerate(_AGENCY_NAMES, start=1):
        agencies.append(Agency(id=f"so-{k:02d}", name=name, level="department", parent="tinh"))
    for k in range(1, AGENCIES - len(agencies) + 1):
        agencies.append(Agency(id=f"xa-{k:02d}", name=f"UBND xã Đồng Tâm {k}", level="commune", parent="tinh"))
    return AgencyTree(tuple(agencies), Agency(id="unknown", name="Chưa xác định"))


def rules() -> list[dict[str, Any]]:
    rng = random.Random(SEED + 1)
    out = []
    levels, weights = zip(*LEVELS, strict=True)
    for r in range(RULES):
        kind = KINDS[r % len(KINDS)]
        out.append({"id": f"{_hex('rule', r)[:8]}-{_hex('rule', r)[8:12]}-4{_hex('rule', r)[13:16]}-8{_hex('rule', r)[17:20]}"
                           f"-{_hex('rule', r)[20:32]}",
                    "title": f"{kind[7]} #{r + 1}", "level": rng.choices(levels, weights)[0],
                    "author": ("Nhóm SOC tỉnh", "Florian Roth (Nextron Systems)", "frack113")[r % 3],
                    "tags": [kind[6], "attack.credential-access" if "t1110" in kind[6] else "attack.execution"],
                    "version": "2026-11-01", "status": "stable",
                    "description": f"{kind[7]}: {kind[4].split('{')[0].strip()} -- quy tắc mẫu số {r + 1} của bộ "
                                   "phát hiện, dùng để đo tốc độ của bảng điều khiển.",
                    "references": [f"https://attack.mitre.org/techniques/{kind[6].split('.')[1].upper()}/"],
                    "falsepositives": ["Quản trị viên kiểm tra hệ thống", "Máy quét lỗ hổng của Sở TT&TT"]})
    return out


def _weights(count: int, skew: float, rng: random.Random) -> list[float]:
    w = [1 / (k + 1) ** skew for k in range(count)]
    rng.shuffle(w)
    return w


@dataclass
class Plan:
    """The skeleton of every alert (agency, rule, time) and the incidents, drawn once."""

    n: int
    now: datetime
    tree: AgencyTree = field(default_factory=agency_tree)
    rules: list[dict[str, Any]] = field(default_factory=rules)

    def __post_init__(self) -> None:
        rng = random.Random(SEED)
        self.agency_ids = [a.id for a in self.tree]
        span = DAYS * 86400
        agency_w = _weights(len(self.agency_ids), 0.8, rng)
        rule_w = _weights(RULES, 1.1, rng)
        self.agency = rng.choices(range(len(self.agency_ids)), agency_w, k=self.n)
        self.rule = rng.choices(range(RULES), rule_w, k=self.n)
        start = self.now.timestamp() - span
        # more by day (07-18 in UTC+7) than by night: accept a uniform time with a diurnal weight
        times = []
        while len(times) < self.n:
            t = start + rng.random() * span
            hour = (t / 3600 + 7) % 24
            if rng.random() < (1.0 if 7 <= hour < 18 else 0.35):
                times.append(t)
        self.time = times
        self.incidents: list[list[int]] = []
        self.member: dict[int, int] = {}
        by_agency: dict[int, list[int]] = {}
        for i, a in enumerate(self.agency):
            by_agency.setdefault(a, []).append(i)
        for j in range(max(1, self.n // PER_INCIDENT)):
            size = 1000 if j < 2 else min(1000, max(1, int(rng.lognormvariate(2.2, 1.0))))
            pool = by_agency[self.agency[rng.randrange(self.n)]]
            chosen = [i for i in rng.sample(pool, min(size, len(pool))) if i not in self.member]
            if not chosen:
                continue
            for i in chosen:
                self.member[i] = len(self.incidents)
            self.incidents.append(sorted(chosen, key=lambda i: self.time[i]))

    def now_iso(self) -> str:
        return iso(self.now)


def _ip(rng: random.Random, agency: int) -> str:
    if rng.random() < 0.6:
        return f"{rng.choice((103, 113, 171, 185, 45, 91))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return f"10.{agency + 1}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _history(rng: random.Random, alert: dict[str, Any], seen: float) -> list[dict[str, Any]]:
    """The workflow changes of one alert, applied to it; its history entries."""
    roll = rng.random()
    if roll < 0.55:
        return []
    steps: list[tuple[str, dict[str, Any]]] = []
    who = rng.choice(ANALYSTS)
    if roll < 0.70 and rng.random() < 0.5 or roll >= 0.70 and rng.random() < 0.3:
        steps.append(("assign", {}))
    if roll < 0.70 or rng.random() < 0.5:
        steps.append(("ack", {}))
    if roll >= 0.70:
        reasons, weights = zip(*CLOSE_REASONS, strict=True)
        steps.append(("close", {"reason": rng.choices(reasons, weights)[0]}))
    entries, at, before = [], seen, "open"
    for seq, (action, extra) in enumerate(steps, start=1):
        at += rng.uniform(60, 6 * 3600)
        when = iso(datetime.fromtimestamp(at, UTC))
        after = {"assign": before, "ack": "acknowledged", "close": "closed"}[action]
        entry = {"id": f"{alert['id']}:{seq:06d}", "alert_id": alert["id"], "seq": seq, "agency": alert["agency"],
                 "rule_id": alert["rule"]["id"], "at": when, "actor": who, "action": action, "from": before,
                 "to": after, "reason": extra.get("reason"), "note": "", "job": None, "job_page": None}
        if action == "assign":
            entry.update(assignee_from=None, assignee_to=who)
            alert.update(assignee=who, assigned_at=when, assigned_by=who)
        elif action == "ack":
            alert.update(acknowledged_at=when, acknowledged_by=who)
        else:
            alert.update(closed_at=when, closed_by=who, close_reason=extra["reason"],
                         close_note="Máy quét của Sở TT&TT" if extra["reason"] == "false_positive" else "")
        alert["status"] = before = after
        entries.append(entry)
    alert.update(history_seq=len(entries), last_change=entries[-1], updated_at=entries[-1]["at"], updated_by=who)
    return entries


def generate(plan: Plan, indices: Iterable[int]) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]:
    """These alerts (each one the same whatever the order): (alert, its events, its history entries)."""
    for i in indices:
        rng = random.Random(SEED * 1_000_003 + i)
        a, r = plan.agency[i], plan.rule[i]
        agency, rule = plan.agency_ids[a], plan.rules[r]
        kind = KINDS[r % len(KINDS)]
        seen = plan.time[i]
        host = f"{('srv', 'pc', 'web', 'db', 'mail')[rng.randrange(5)]}-{agency}-{rng.randrange(120):03d}"
        user = f"{rng.choice(('nguyen', 'tran', 'le', 'pham', 'hoang', 'vu', 'dang', 'bui'))}." \
               f"{rng.choice(('an', 'binh', 'chi', 'dung', 'giang', 'hai', 'khanh', 'linh', 'mai', 'nam'))}{rng.randrange(40)}"
        src, dst = _ip(rng, a), f"10.{a + 1}.{rng.randrange(4)}.{rng.randrange(1, 40)}"
        correlated = rng.random() < 0.15
        count = rng.randint(2, 6) if correlated else 1
        events = []
        for k in range(count):
            t = seen + k * rng.uniform(1, 30)
            ts = iso(datetime.fromtimestamp(t, UTC))
            values = {"user": user, "ip": src, "host": host, "dst": dst, "ts": ts, "pid": rng.randrange(200, 60000),
                      "port": rng.randrange(1024, 65535)}
            events.append({"_id": _hex("event", i, k), "@timestamp": ts, "event.dataset": kind[0],
                           "organization.id": agency, "organization.name": plan.tree.name_of(agency),
                           "host.name": host, "user.name": user, "source.ip": src, "destination.ip": dst,
                           "event.action": kind[2], "event.outcome": kind[3], "process.name": kind[1],
                           "log.level": "warning", "message": kind[4].format(**values),
                           "event.original": kind[5].format(**values)})
        first = events[0]["@timestamp"]
        delay = rng.uniform(86400 * 5, 86400 * 20) if rng.random() < 0.02 else rng.uniform(20, 600)  # 2% back-filled
        alert: dict[str, Any] = {
            "rule": rule, "detected_at": iso(datetime.fromtimestamp(seen + delay, UTC)), "status": "new",
            "id": alert_id(i), "kind": "correlation" if correlated else "event", "@timestamp": first,
            "first_seen": first, "last_seen": events[-1]["@timestamp"], "agency": agency, "event_count": count,
            "event_ids": [e["_id"] for e in events], "group": {}, "group_key": "",
            "entities": {"host.name": [host], "source.ip": [src], "destination.ip": [dst], "user.name": [user],
                         "event.action": [kind[2]], "event.outcome": [kind[3]]},
        }
        if correlated:
            alert["group"] = {"source.ip": src, "host.name": host}
            alert["group_key"] = f"agency={agency}|host.name={host}|source.ip={src}"
            alert["correlation"] = {"type": "event_count", "timespan_seconds": 300, "condition": {"gte": 2},
                                    "max_in_window": count, "windows": 1}
        if rng.random() < 0.6:  # the host is in the asset inventory (soc.alerts.priority)
            system = rng.randrange(8)
            alert["asset"] = {"level": 1 + (a + system) % 5, "system": f"Hệ thống {system + 1} của {agency}"}
        alert["risk"] = SEVERITY_RANK.get(rule["level"], 1) * (alert.get("asset") or {}).get("level", 1)
        if i in plan.member:
            alert["incident_id"] = incident_id(plan.member[i])
        history = _history(rng, alert, seen + delay)
        yield alert, events, history


def incident_docs(plan: Plan, alerts: Callable[[int], dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The incidents of the plan (``alerts(i)``: alert ``i`` as generated)."""
    types = ("unauthorized_access", "malware", "scan", "dos", "spoofing", "defacement", "espionage", "other")
    for j, members in enumerate(plan.incidents):
        rng = random.Random(SEED * 7 + j)
        first, last = alerts(members[0]), alerts(members[-1])
        agency = first["agency"]
        opened = first["detected_at"]
        who = rng.choice(ANALYSTS)
        t = datetime.fromisoformat(opened.replace("Z", "+00:00"))
        history = [{"at": opened, "actor": "playbook:brute-force", "action": "opened", "detail": {"alerts": len(members)}}]
        notes = []
        for k in range(rng.randint(0, 5)):
            t += timedelta(minutes=rng.uniform(5, 600))
            notes.append({"at": iso(t), "author": who, "text": f"Ghi chú {k + 1}: đã kiểm tra máy {first['entities']['host.name'][0]}, "
                                                             "đề nghị đơn vị đổi mật khẩu và rà soát nhật ký."})
            history.append({"at": iso(t), "actor": who, "action": "note", "detail": {}})
        status = rng.choice(("new", "triage", "contained", "resolved", "closed"))
        if status != "new":
            t += timedelta(minutes=rng.uniform(5, 300))
            history.append({"at": iso(t), "actor": who, "action": "status", "detail": {"from": "new", "to": status}})
        rules = list(dict.fromkeys(alerts(i)["rule"]["id"] for i in members[:50]))
        yield {"id": incident_id(j), "title": f"{first['rule']['title']} tại {plan.tree.name_of(agency)}",
               "title_template": None, "status": status, "severity": rng.choice(("low", "medium", "high", "critical")),
               "incident_type": rng.choice(types), "agency": agency, "agencies": [agency],
               "alert_ids": [alert_id(i) for i in members], "rule_ids": rules,
               "entities": {"host.name": first["entities"]["host.name"], "source.ip": first["entities"]["source.ip"]},
               "first_seen": first["first_seen"], "last_seen": last["last_seen"], "discovered_at": opened,
               "created_at": opened, "created_by": "playbook:brute-force", "updated_at": history[-1]["at"],
               "response_ended_at": history[-1]["at"] if status in ("resolved", "closed") else None,
               "closed_at": history[-1]["at"] if status == "closed" else None, "assignee": who,
               "verdict": "true_positive" if status == "closed" else None, "summary": "Dò mật khẩu có tổ chức.",
               "outcome": "", "affected_systems": [{"name": "Hệ thống quản lý văn bản", "level": rng.randint(1, 5),
                                                      "hosts": first["entities"]["host.name"]}],
               "impacts": [], "notes": notes, "reports": [], "history": history, "merged_into": None, "pinned": []}
        if j % 3 == 0:
            yield {"_task": True, "id": f"task-{_hex('task', j)[:16]}", "kind": "remediation", "agency": agency,
                   "agency_name": plan.tree.name_of(agency), "title": "Đổi mật khẩu các tài khoản bị dò",
                   "description": "Đề nghị đơn vị đổi mật khẩu và báo lại.", "incident_id": incident_id(j),
                   "due_at": None, "status": "open", "created_at": iso(t), "created_by": who,
                   "acknowledged_at": None, "acknowledged_by": None, "done_at": None, "done_by": None,
                   "done_note": None, "updated_at": iso(t),
                   "events": [{"at": iso(t), "actor": who, "action": "created", "note": ""}], "notifications": []}


class Progress:
    """One line of progress on stderr, at most every 2 seconds."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.t0, self.last = what, total, time.monotonic(), 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < 2 and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate else math.inf
        print(f"\r  {self.what}: {done:,}/{self.total:,} ({rate:,.0f}/s, {eta:,.0f} s left)   ", end="",
              file=sys.stderr, flush=True)
        if done >= self.total:
            print(file=sys.stderr)


def seed(plan: Plan, write_docs: Callable[[str, list[dict[str, Any]]], None],
         write_events: Callable[[list[dict[str, Any]]], None], *, writers: int = 1) -> dict[str, int]:
    """Write the plan: alerts with events and history in batches (``writers`` writes at a time,
    while the next batch is made), then incidents and tasks."""
    counts = {"alerts": 0, "events": 0, "alert_history": 0, "incidents": 0, "tasks": 0}
    progress = Progress("alerts", plan.n)
    members = {i for group in plan.incidents for i in (group[0], group[-1])}
    kept: dict[int, dict[str, Any]] = {}
    # in the order of the alert ids: documents are appended to the tables keyed by id, not
    # scattered over them (the same data, written many times faster)
    order = sorted(range(plan.n), key=alert_id)
    with ThreadPoolExecutor(max_workers=writers) as pool:
        pending: list[Any] = []
        for lo in range(0, plan.n, BATCH):
            alerts, events, history = [], [], []
            chunk = order[lo:lo + BATCH]
            for i, (alert, evs, hist) in zip(chunk, generate(plan, chunk), strict=True):
                alerts.append(alert)
                events.extend(evs)
                history.extend(hist)
                if i in members:
                    kept[i] = alert
            for job in pending:
                job.result()
            pending = [pool.submit(write_docs, "alerts", alerts), pool.submit(write_events, events)]
            if history:
                pending.append(pool.submit(write_docs, "alert_history", history))
            counts["alerts"] += len(alerts)
            counts["events"] += len(events)
            counts["alert_history"] += len(history)
            progress(counts["alerts"])
        for job in pending:
            job.result()
    first_rule = {i: plan.rules[plan.rule[i]] for group in plan.incidents for i in group[:50]}

    def alert_of(i: int) -> dict[str, Any]:
        return kept.get(i) or {"rule": first_rule[i]}

    incidents, tasks = [], []
    for doc in incident_docs(plan, alert_of):
        (tasks if doc.pop("_task", False) else incidents).append(doc)
    for start in range(0, len(incidents), 500):
        write_docs("incidents", incidents[start:start + 500])
    write_docs("tasks", tasks)
    counts["incidents"], counts["tasks"] = len(incidents), len(tasks)
    return counts


def dumps(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)
