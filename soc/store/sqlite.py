"""The embedded store: one SQLite database file in WAL mode.

Events live in one table. The columns every query needs are real columns (``id``, event time
``ts`` and ingest time ``ingested`` as epoch seconds, ``dataset``, ``agency``, ``message``,
``original``); the whole event is also kept as a JSON document ``doc`` with flat dotted keys.
A field a detection rule names (``user.name``, ``winlog.event_data.Image``) is a column of that
exact name, declared ``COLLATE NOCASE`` because Sigma matches case-insensitively, or ``NUMERIC``
for numeric fields so that ``EventID: 4625`` and ``sc-status >= 500`` compare as numbers:

* the fields most rules read (:data:`HOT_FIELDS`) are real columns filled at write time --
  reading a JSON document costs about a microsecond per row and field, a column nothing;
* any other field becomes a *virtual generated column* over ``doc``, added on first use
  (:meth:`prepare_fields`).

So the SQL that pySigma generates runs unchanged, and the table never needs a migration when
rules change.

Writing binds only the values an event has: a row is inserted by a statement naming just its
non-NULL columns (binding ``None`` through :mod:`sqlite3` costs as much as a whole column of text,
and most hot fields are absent from most events), one ``executemany`` per column set.

Keyword rules (SigmaHQ's Linux rules: dozens of ``message LIKE '%...%'`` each) dominate a scan
that evaluates many rules at once. :meth:`SQLiteStore.find_matches_many` therefore runs the
predicates that *require* some literal in ``message`` (see :func:`keyword_requirement`) in a
pass of their own, gated by one call per row that looks for any of those literals at once (a
regular expression over the ASCII-lowercased message, see :func:`literal_finder`): rows without any of them
cannot match and skip every ``LIKE``; the rows with one are evaluated by the exact predicates, so
the result is the same.

A *scratch* store (``durable=False``: one-shot hunts) skips the journal and fsyncs and has no
time or dataset indexes: it is loaded once and then scanned whole, where a sequential scan beats
an index walk and maintaining three indexes would cost a third of the load. Nor has it a unique
index on ``id`` (inserting random 32-character keys into a b-tree bigger than the cache costs
several microseconds per event): the ids it holds are kept in a Python set instead (about
100 bytes per event), which keeps writes idempotent; an ``id`` index is built on the first
:meth:`SQLiteStore.get_events`.

Documents (alerts, rule state, incidents...) live in a ``docs`` table keyed by
``(collection, id)`` with a version for compare-and-set.

Each thread gets its own connection (SQLite connections are not shared across threads); WAL
lets readers run while a writer commits, and ``busy_timeout`` makes writers queue rather than
fail.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from itertools import compress
from operator import is_not
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from soc.model import Event, iso, parse_iso
from soc.store.base import Conflict, Doc, Match, StoreError, StoreMissing, Window, WriteResult

# Keys kept in real columns rather than in the JSON document.
_COLUMN_KEYS = {"_id", "_ts", "@timestamp", "event.ingested", "event.dataset", "organization.id",
                "message", "event.original"}
_BASE_COLUMNS = {"rowid", "id", "ts", "ingested", "dataset", "agency", "message", "original", "doc"}
# Fields queried through a real column rather than the document.
_FIELD_COLUMN = {"@timestamp": "ts", "event.ingested": "ingested", "event.dataset": "dataset",
                 "organization.id": "agency", "message": "message", "event.original": "original",
                 "_id": "id"}

#: fields most detection rules read: stored as real columns (see the module docstring)
HOT_FIELDS = (
    "event.action", "event.outcome", "event.code", "event.severity", "log.level",
    "host.name", "process.name", "process.executable", "process.command_line",
    "user.name", "user.target.name", "group.name",
    "source.ip", "source.port", "destination.ip", "destination.port", "network.transport",
    "url.original", "url.path", "url.query", "http.request.method", "http.response.status_code",
    "user_agent.original", "http.request.referrer", "rule.name",
    "winlog.event_id", "winlog.channel", "winlog.provider_name", "auditd.type",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id        TEXT NOT NULL UNIQUE,
    ts        REAL NOT NULL,
    ingested  REAL NOT NULL,
    dataset   TEXT NOT NULL,
    agency    TEXT,
    message   TEXT COLLATE NOCASE,
    original  TEXT COLLATE NOCASE,
    doc       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS docs (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS events_ingested ON events (ingested);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_dataset_ts ON events (dataset, ts);
"""
#: the columns of a row as :meth:`SQLiteStore.write_events` builds it
_ROW_COLUMNS = ("id", "ts", "ingested", "dataset", "agency", "message", "original", "doc", *HOT_FIELDS)
_NONES = (None,) * len(_ROW_COLUMNS)


# ---- keyword prefilter ------------------------------------------------------------------------

_ASCII_FOLD = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_TOKEN = re.compile(r"""\s+|'(?:[^']|'')*'|`(?:[^`]|``)*`|\(|\)|[A-Za-z_][A-Za-z0-9_.]*|[^\s()'`A-Za-z_]+""")
#: words that make a predicate too hard to read safely: no prefilter for it
_OPAQUE = {"BETWEEN", "CASE", "SELECT", "EXISTS", "GLOB", "MATCH", "COLLATE"}


def fold_ascii(text: str) -> str:
    """ASCII letters lowercased, everything else kept: the case-insensitivity of SQLite's LIKE."""
    return text.lower() if text.isascii() else text.translate(_ASCII_FOLD)


def _like_fragments(pattern: str, escape: str | None) -> list[str]:
    """The literal runs of a LIKE pattern (between ``%`` and ``_`` wildcards), unescaped."""
    out, current, i = [], [], 0
    while i < len(pattern):
        char = pattern[i]
        if escape is not None and char == escape and i + 1 < len(pattern):
            current.append(pattern[i + 1])
            i += 2
            continue
        if char in "%_":
            out.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    out.append("".join(current))
    return [f for f in out if f]


class _Unreadable(Exception):
    pass


def keyword_requirement(where: str, column: str = "message") -> frozenset[str] | None:
    """Literals (ASCII-lowercased) one of which ``column`` must contain, ignoring ASCII case,
    for the SQL predicate ``where`` to be true; None when there is no such set (or the predicate
    is not one this reader understands, which is then never prefiltered).

    Reads AND / OR / NOT and parentheses; an atom ``column LIKE '<pattern>' [ESCAPE '<c>']``
    requires the longest literal run of its pattern; any other atom requires nothing. OR needs
    every branch to require something (the union), AND any one branch (the most selective),
    NOT nothing. Sound because SQL's three-valued AND/OR are monotone: a true conjunction has
    every conjunct true, a true disjunction at least one."""
    tokens = [t for t in _TOKEN.findall(where) if not t.isspace()]
    if any(t.upper() in _OPAQUE for t in tokens):
        return None
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def word(token: str | None) -> str:
        return token.upper() if token else ""

    def disjunction() -> frozenset[str] | None:
        nonlocal pos
        needs = [conjunction()]
        while word(peek()) == "OR":
            pos += 1
            needs.append(conjunction())
        if any(n is None for n in needs):
            return None
        return frozenset().union(*needs)  # type: ignore[arg-type]

    def conjunction() -> frozenset[str] | None:
        nonlocal pos
        needs = [negation()]
        while word(peek()) == "AND":
            pos += 1
            needs.append(negation())
        known = [n for n in needs if n is not None]
        return max(known, key=lambda n: (min(map(len, n)), -len(n))) if known else None

    def negation() -> frozenset[str] | None:
        nonlocal pos
        if word(peek()) == "NOT":
            pos += 1
            negation()
            return None
        if peek() == "(":
            pos += 1
            need = disjunction()
            if peek() != ")":
                raise _Unreadable
            pos += 1
            return need
        return atom()

    def atom() -> frozenset[str] | None:
        nonlocal pos
        start, depth = pos, 0
        while pos < len(tokens):
            token = tokens[pos]
            if depth == 0 and (token == ")" or word(token) in ("AND", "OR")):
                break
            if token == "(":
                depth += 1
            elif token == ")":
                depth -= 1
            pos += 1
        parts = tokens[start:pos]
        if not parts or depth != 0:
            raise _Unreadable
        name = parts[0][1:-1].replace("``", "`") if parts[0].startswith("`") else parts[0]
        if name.lower() != column or len(parts) not in (3, 5) or word(parts[1]) != "LIKE" \
                or not parts[2].startswith("'"):
            return None
        escape = None
        if len(parts) == 5:
            if word(parts[3]) != "ESCAPE" or not parts[4].startswith("'") or len(parts[4]) != 3:
                return None
            escape = parts[4][1]
        fragments = _like_fragments(parts[2][1:-1].replace("''", "'"), escape)
        return frozenset({fold_ascii(max(fragments, key=len))}) if fragments else None

    try:
        need = disjunction()
    except _Unreadable:
        return None
    return need if pos == len(tokens) else None


#: characters from the most to the least common in (lowercased) log lines, as counted over the
#: loghub and elastic-examples samples; a character not listed counts as rarest
_COMMON = " soe10r2i:ntdau-c47p5hm38.l[]6f9=_b()xywk/vjg;z\"$q>',!\\+@*#&"
_RANK = {c: len(_COMMON) - i for i, c in enumerate(_COMMON)}


def literal_finder(literals: Iterable[str]) -> re.Pattern[str]:
    """One regular expression finding any of ``literals``.

    Each literal is anchored at its rarest character: the pattern starts with a character set,
    which ``re`` scans for in C, and only at those positions checks the rest (the part before
    the anchor by a fixed-width look-behind, the part after directly). Many times faster than
    trying every literal at every position."""
    anchored: dict[str, set[str]] = {}
    for literal in set(literals):
        at = min(range(len(literal)), key=lambda i: (_RANK.get(literal[i], 0), -i))
        before, anchor, after = literal[:at], literal[at], literal[at + 1:]
        rest = (f"(?<={re.escape(before + anchor)})" if before else "") + re.escape(after)
        anchored.setdefault(anchor, set()).add(rest)
    branches = []
    for anchor, rests in sorted(anchored.items()):
        options = sorted(rests)
        tail = "" if "" in rests else options[0] if len(options) == 1 else "(?:" + "|".join(options) + ")"
        branches.append(re.escape(anchor) + tail)
    return re.compile("|".join(branches) if branches else "(?!)")


def _regexp(pattern: str, value: Any) -> bool:
    if value is None:
        return False
    return _compiled(pattern).search(str(value)) is not None


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _sql_string(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    """``name`` as an SQL identifier (backticks, as pySigma's SQLite backend writes them)."""
    return "`" + name.replace("`", "``") + "`"


#: object keys a quoted JSON path step (``."key"``) spells literally on every SQLite: no ``"``,
#: no backslash, no control character. SQLite before 3.45 ends such a step at the first ``"``
#: whatever precedes it and compares keys as written in the JSON text; later versions decode
#: JSON escapes in both. ``.``, ``[``, ``$``, ``'``... are plain text inside the quotes.
_PLAIN_KEY = re.compile(r'[^"\\\x00-\x1f]*')


def json_extract_sql(column: str, keys: Sequence[str]) -> str:
    """SQL for the value at ``keys`` (object keys, outermost first) of the JSON in ``column``:
    ``json_extract(doc, '$."user.name"')``; keys a JSON path cannot spell the same way on every
    SQLite go to :func:`_json_get` instead, as a JSON array of keys. Either way each key is data
    inside a string literal: nothing in a field name can end the literal or the path step."""
    if all(_PLAIN_KEY.fullmatch(key) for key in keys):
        path = "$" + "".join(f'."{key}"' for key in keys)
        return f"json_extract({column}, {_sql_string(path)})"
    return f"soc_json_get({column}, {_sql_string(orjson.dumps(list(keys)).decode())})"


def _field_sql(field: str) -> str:
    """The value of the flat dotted key ``field`` (``user.name``) of an event's ``doc``."""
    return json_extract_sql("doc", [field])


def _doc_field_sql(field: str) -> str:
    """The value of a (possibly nested, dot-separated) field of a document ``body``."""
    return json_extract_sql("body", field.split("."))


def _json_get(text: str | None, keys: str) -> Any:
    """SQL function ``soc_json_get(json, keys)``: ``json_extract`` by a JSON array of object keys."""
    if text is None:
        return None
    value: Any = orjson.loads(text)
    for key in orjson.loads(keys):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


def _bindable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(orjson.dumps(v).decode() if isinstance(v, (list, dict, tuple)) else v for v in row)


class SQLiteStore:
    """Embedded store. ``path`` may be ``":memory:"`` only for single-threaded use (hunts)."""

    dialect = "sqlite"
    #: the options of :func:`soc.store.open_store` this store takes (it has no indices or replicas)
    OPENING_OPTIONS = frozenset({"durable", "numeric_fields", "create"})

    @classmethod
    def from_url(cls, url: str, *, create: bool = True, **options: Any) -> SQLiteStore:
        """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy convention);
        ``create=False`` raises :class:`soc.store.StoreMissing` instead of creating a new file."""
        from soc.catalog import default_catalog

        parts = urlsplit(url)
        path = parts.netloc + parts.path[1:] if parts.path.startswith("/") else parts.netloc + parts.path
        if not create and path and path != ":memory:" and not Path(path).exists():
            raise StoreMissing(f"no store at {path}")
        options.setdefault("numeric_fields", default_catalog().numeric_fields)
        return cls(path or ":memory:", **options)

    def __init__(self, path: str | Path, *, durable: bool = True, numeric_fields: Iterable[str] = ()):
        self.path = str(path)
        self.durable = durable
        self._numeric = set(numeric_fields)
        self._local = threading.local()
        self._columns_lock = threading.Lock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._columns: set[str] = set()
        conn = self._conn()
        conn.executescript(_SCHEMA if durable else _SCHEMA.replace(" NOT NULL UNIQUE,", " NOT NULL,"))
        if durable:
            conn.executescript(_INDEXES)
        #: scratch store: the ids written (instead of a unique index), and whether ``id`` is indexed
        self._ids: set[str] | None = None if durable else {r[0] for r in conn.execute("SELECT id FROM events")}
        self._id_indexed = durable
        self._columns = {row[1] for row in conn.execute("PRAGMA table_xinfo(events)")}
        self._add_hot_columns(conn)
        self._inserts: dict[tuple[bool, ...], str] = {}
        self._finders: list[re.Pattern[str]] = []
        self._finder_ids: dict[frozenset[str], int] = {}

    def _column_type(self, field: str) -> str:
        return "NUMERIC" if field in self._numeric else "TEXT COLLATE NOCASE"

    def _add_hot_columns(self, conn: sqlite3.Connection) -> None:
        """Real columns for :data:`HOT_FIELDS`; on a database made before a field became hot,
        the column is added and filled from the documents."""
        for field in HOT_FIELDS:
            if field in self._columns:
                continue
            with _transaction(conn, immediate=True):
                conn.execute(f"ALTER TABLE events ADD COLUMN {quote_ident(field)} {self._column_type(field)}")
                conn.execute(f"UPDATE events SET {quote_ident(field)} = {_field_sql(field)}"
                             f" WHERE {_field_sql(field)} IS NOT NULL")
            self._columns.add(field)

    # -- connections ---------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 60000")
            if self.durable:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            else:  # one-shot hunts: the database is scratch space
                conn.execute("PRAGMA journal_mode = OFF")
                conn.execute("PRAGMA synchronous = OFF")
                conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA cache_size = -131072")  # 128 MiB
            conn.create_function("regexp", 2, _regexp, deterministic=True)
            conn.create_function("soc_has_literal", 2, self._has_literal, deterministic=True)
            conn.create_function("soc_json_get", 2, _json_get, deterministic=True)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- events --------------------------------------------------------------------------------
    def _insert_sql(self, present: tuple[bool, ...]) -> str:
        sql = self._inserts.get(present)
        if sql is None:
            names = [quote_ident(c) for c, p in zip(_ROW_COLUMNS, present, strict=True) if p]
            sql = f"INSERT OR IGNORE INTO events ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            self._inserts[present] = sql
        return sql

    def write_events(self, events: Sequence[Event]) -> WriteResult:
        now = time.time()
        groups: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
        rejected: list[tuple[str, str]] = []
        dumps = orjson.dumps
        hot = HOT_FIELDS
        nones = _NONES
        known = self._ids
        fresh: set[str] = set()
        duplicates = 0
        for event in events:
            if known is not None:
                event_id = event.get("_id")
                if event_id in known or event_id in fresh:
                    duplicates += 1
                    continue
            try:
                ts = event.get("_ts")
                if ts is None:
                    ts = parse_iso(event["@timestamp"]).timestamp()
                doc = dict(event)
                for key in _COLUMN_KEYS:
                    doc.pop(key, None)
                row = (event["_id"], ts, now, event.get("event.dataset") or "generic.text",
                       event.get("organization.id"), event.get("message"), event.get("event.original"),
                       dumps(doc).decode(), *map(event.get, hot))
            except (KeyError, TypeError, ValueError, orjson.JSONEncodeError) as error:
                rejected.append((str(event.get("_id")), f"{type(error).__name__}: {error}"))
                continue
            if known is not None:
                fresh.add(row[0])
            present = tuple(map(is_not, row, nones))
            bucket = groups.get(present)
            if bucket is None:
                bucket = groups[present] = []
            bucket.append(tuple(compress(row, present)))
        conn = self._conn()
        written = 0
        with _transaction(conn):
            before = conn.total_changes
            for present, rows in groups.items():
                sql = self._insert_sql(present)
                written += len(rows)
                try:
                    conn.executemany(sql, rows)
                except sqlite3.ProgrammingError:  # a list or object in a hot field: store it as JSON
                    conn.executemany(sql, [_bindable(row) for row in rows])
            created = conn.total_changes - before
        if known is not None:
            known.update(fresh)  # only once committed
        return WriteResult(created=created, existing=written - created + duplicates, rejected=rejected)

    def prepare_fields(self, fields: Iterable[str]) -> None:
        missing = [f for f in fields if f not in _FIELD_COLUMN and f not in self._columns]
        if not missing:
            return
        with self._columns_lock:
            conn = self._conn()
            self._columns = {row[1] for row in conn.execute("PRAGMA table_xinfo(events)")}
            for field in missing:
                if field in self._columns or field.lower() in {c.lower() for c in self._columns}:
                    continue
                kind = self._column_type(field)
                conn.execute(
                    f"ALTER TABLE events ADD COLUMN {quote_ident(field)} {kind} "
                    f"GENERATED ALWAYS AS ({_field_sql(field)}) VIRTUAL"
                )
                self._columns.add(field)

    def _where_window(self, window: Window) -> tuple[list[str], list[Any]]:
        column = _FIELD_COLUMN.get(window.field)
        if column not in ("ts", "ingested"):
            raise StoreError(f"windows run on @timestamp or event.ingested, not {window.field!r}")
        clauses, params = [], []
        if window.start is not None:
            clauses.append(f"{column} >= ?")
            params.append(window.start)
        if window.end is not None:
            clauses.append(f"{column} < ?")
            params.append(window.end)
        if window.ingested_before is not None:
            clauses.append("ingested < ?")
            params.append(window.ingested_before)
        return clauses, params

    def _match_clauses(self, where: Any, datasets: Sequence[str] | None,
                       window: Window) -> tuple[list[str], list[Any]] | None:
        clauses, params = self._where_window(window)
        if datasets is not None:
            if not datasets:
                return None
            clauses.append(f"dataset IN ({', '.join('?' * len(datasets))})")
            params.extend(datasets)
        if where:
            clauses.append(f"({where})")
        return clauses, params

    def count_matches(self, where: Any, datasets: Sequence[str] | None, window: Window) -> int:
        built = self._match_clauses(where, datasets, window)
        if built is None:
            return 0
        clauses, params = built
        (count,) = self._conn().execute(
            f"SELECT COUNT(*) FROM events WHERE {' AND '.join(clauses) or '1'}", params).fetchone()
        return int(count)

    def find_matches(
        self,
        where: Any,
        datasets: Sequence[str] | None,
        window: Window,
        fields: Sequence[str],
        limit: int,
    ) -> list[Match]:
        self.prepare_fields(fields)
        built = self._match_clauses(where, datasets, window)
        if built is None:
            return []
        clauses, params = built
        columns = ", ".join(quote_ident(_FIELD_COLUMN.get(f, f)) for f in fields)
        sql = (f"SELECT id, ts, agency{', ' + columns if columns else ''} FROM events"
               f" WHERE {' AND '.join(clauses) or '1'} ORDER BY ts, id LIMIT ?")
        params.append(limit)
        try:
            rows = self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise StoreError(f"query failed: {error}") from error
        return [Match(row[0], row[1], row[2], dict(zip(fields, row[3:], strict=True))) for row in rows]

    #: predicates evaluated per pass (one SQLite result column each)
    MANY_CHUNK = 64
    #: keyword atoms from which a prefiltered pass pays: one LIKE costs SQLite ~0.07 us per
    #: row, one call of :meth:`_has_literal` ~3 us
    PREFILTER_MIN_ATOMS = 40

    def _has_literal(self, message: Any, finder: int) -> int:
        if message is None:
            return 0
        if not isinstance(message, str):
            return 1  # not text: no prefilter, the exact predicates decide
        return 1 if self._finders[finder].search(fold_ascii(message)) else 0

    def _finder(self, literals: frozenset[str]) -> int:
        with self._columns_lock:
            if literals not in self._finder_ids:
                self._finders.append(literal_finder(literals))
                self._finder_ids[literals] = len(self._finders) - 1
            return self._finder_ids[literals]

    def _passes(self, wheres: Sequence[Any]) -> list[tuple[list[int], str | None]]:
        """The predicates (by index) evaluated together, each group with its prefilter clause."""
        needs = [keyword_requirement(w) if isinstance(w, str) else None for w in wheres]
        keyword = [i for i, n in enumerate(needs) if n is not None]
        atoms = sum(wheres[i].upper().count(" LIKE ") for i in keyword)
        if atoms < self.PREFILTER_MIN_ATOMS:
            return [(list(range(len(wheres))), None)]
        literals = frozenset().union(*(needs[i] for i in keyword))  # type: ignore[arg-type]
        gate = f"soc_has_literal(message, {self._finder(literals)})"
        rest = [i for i, n in enumerate(needs) if n is None]
        return [(rest, None), (keyword, gate)] if rest else [(keyword, gate)]

    def find_matches_many(
        self,
        wheres: Sequence[Any],
        datasets: Sequence[str] | None,
        window: Window,
        fields: Sequence[str],
        limit: int,
    ) -> list[list[Match]]:
        self.prepare_fields(fields)
        out: list[list[Match]] = [[] for _ in wheres]
        columns = ", ".join(quote_ident(_FIELD_COLUMN.get(f, f)) for f in fields)
        for members, gate in self._passes(wheres):
            for start in range(0, len(members), self.MANY_CHUNK):
                chunk = members[start:start + self.MANY_CHUNK]
                built = self._match_clauses(" OR ".join(f"({wheres[i]})" for i in chunk), datasets, window)
                if built is None:
                    return out
                clauses, params = built
                if gate is not None:
                    clauses.insert(len(clauses) - 1, gate)  # before the predicates
                flags = ", ".join(f"CASE WHEN ({wheres[i]}) THEN 1 ELSE 0 END" for i in chunk)
                sql = (f"SELECT id, ts, agency, {flags}{', ' + columns if columns else ''} FROM events"
                       f" WHERE {' AND '.join(clauses)} ORDER BY ts, id")
                width = len(chunk)
                try:
                    cursor = self._conn().execute(sql, params)
                    for row in cursor:
                        match: Match | None = None
                        for column, i in enumerate(chunk, start=3):
                            if row[column] and len(out[i]) < limit:
                                if match is None:
                                    match = Match(row[0], row[1], row[2],
                                                  dict(zip(fields, row[3 + width:], strict=True)))
                                out[i].append(match)
                except sqlite3.Error as error:
                    raise StoreError(f"query failed: {error}") from error
        return out

    def get_events(self, ids: Sequence[str]) -> list[Event]:
        out: list[Event] = []
        conn = self._conn()
        if not self._id_indexed:
            with self._columns_lock:
                conn.execute("CREATE INDEX IF NOT EXISTS events_id ON events (id)")
                self._id_indexed = True
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            rows = conn.execute(
                "SELECT id, ts, ingested, dataset, agency, message, original, doc FROM events"
                f" WHERE id IN ({', '.join('?' * len(chunk))})", chunk).fetchall()
            for id_, ts, ingested, dataset, agency, message, original, doc in rows:
                event: Event = orjson.loads(doc)
                event.update({"_id": id_, "@timestamp": iso(datetime.fromtimestamp(ts).astimezone()),
                              "event.ingested": iso(datetime.fromtimestamp(ingested).astimezone()),
                              "event.dataset": dataset})
                if agency is not None:
                    event["organization.id"] = agency
                if message is not None:
                    event["message"] = message
                if original is not None:
                    event["event.original"] = original
                out.append(event)
        order = {id_: i for i, id_ in enumerate(ids)}
        out.sort(key=lambda e: order[e["_id"]])
        return out

    def count_events(self, window: Window | None = None, group_by: str | None = None) -> dict[str, int]:
        clauses, params = self._where_window(window) if window else ([], [])
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        if group_by is None:
            (total,) = self._conn().execute(f"SELECT COUNT(*) FROM events{where}", params).fetchone()
            return {"": total}
        self.prepare_fields([group_by])
        column = quote_ident(_FIELD_COLUMN.get(group_by, group_by))
        rows = self._conn().execute(
            f"SELECT {column}, COUNT(*) FROM events{where} GROUP BY 1", params).fetchall()
        return {str(key): count for key, count in rows}

    def purge_events(self, older_than: float) -> int:
        conn = self._conn()
        with _transaction(conn):
            if self._ids is None:
                cursor = conn.execute("DELETE FROM events WHERE ts < ?", (older_than,))
                return cursor.rowcount
            gone = [r[0] for r in conn.execute("DELETE FROM events WHERE ts < ? RETURNING id", (older_than,))]
        self._ids.difference_update(gone)
        return len(gone)

    # -- documents -----------------------------------------------------------------------------
    def create(self, collection: str, id: str, body: dict[str, Any]) -> bool:
        conn = self._conn()
        cursor = conn.execute(
            "INSERT OR IGNORE INTO docs (collection, id, version, body) VALUES (?, ?, 1, ?)",
            (collection, id, orjson.dumps(body).decode()))
        return cursor.rowcount == 1

    def get(self, collection: str, id: str) -> Doc | None:
        row = self._conn().execute(
            "SELECT version, body FROM docs WHERE collection = ? AND id = ?", (collection, id)).fetchone()
        return Doc(id, row[0], orjson.loads(row[1])) if row else None

    def put(self, collection: str, id: str, body: dict[str, Any], expected_version: int | None = None) -> int:
        text = orjson.dumps(body).decode()
        conn = self._conn()
        with _transaction(conn, immediate=True):
            row = conn.execute("SELECT version FROM docs WHERE collection = ? AND id = ?",
                               (collection, id)).fetchone()
            current = row[0] if row else 0
            if expected_version is not None and expected_version != current:
                raise Conflict(f"{collection}/{id}: expected version {expected_version}, found {current}")
            conn.execute(
                "INSERT INTO docs (collection, id, version, body) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (collection, id) DO UPDATE SET version = excluded.version, body = excluded.body",
                (collection, id, current + 1, text))
        return current + 1

    def delete(self, collection: str, id: str) -> bool:
        cursor = self._conn().execute("DELETE FROM docs WHERE collection = ? AND id = ?", (collection, id))
        return cursor.rowcount == 1

    def find(
        self,
        collection: str,
        where: dict[str, Any] | None = None,
        *,
        time_field: str | None = None,
        start: str | None = None,
        end: str | None = None,
        sort: str | None = None,
        descending: bool = False,
        limit: int = 1000,
    ) -> list[Doc]:
        clauses, params = ["collection = ?"], [collection]
        for field, value in (where or {}).items():
            path = _doc_field_sql(field)
            if isinstance(value, (list, tuple, set)):
                values = list(value)
                if not values:
                    return []
                clauses.append(f"{path} IN ({', '.join('?' * len(values))})")
                params.extend(values)
            elif value is None:
                clauses.append(f"{path} IS NULL")
            else:
                clauses.append(f"{path} = ?")
                params.append(value)
        if time_field and start is not None:
            clauses.append(f"{_doc_field_sql(time_field)} >= ?")
            params.append(start)
        if time_field and end is not None:
            clauses.append(f"{_doc_field_sql(time_field)} < ?")
            params.append(end)
        order = ""
        if sort:
            order = f" ORDER BY {_doc_field_sql(sort)} {'DESC' if descending else 'ASC'}, id"
        sql = f"SELECT id, version, body FROM docs WHERE {' AND '.join(clauses)}{order} LIMIT ?"
        params.append(limit)
        return [Doc(r[0], r[1], orjson.loads(r[2])) for r in self._conn().execute(sql, params)]

    def iter_all(self, collection: str) -> Iterator[Doc]:
        cursor = self._conn().execute(
            "SELECT id, version, body FROM docs WHERE collection = ? ORDER BY id", (collection,))
        for id_, version, body in cursor:
            yield Doc(id_, version, orjson.loads(body))

    def refresh(self) -> None:
        """Writes are visible to new reads at once in SQLite."""


class _transaction:
    """``BEGIN``/``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection, immediate: bool = False):
        self.conn, self.begin = conn, "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(self.begin)
        return self.conn

    def __exit__(self, kind: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if kind else "COMMIT")
