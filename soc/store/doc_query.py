"""Document queries over a store: what to ask (:class:`DocQuery`, :class:`DocFilter`), what comes
back (:class:`DocPage`), and the checks both stores rely on (re-exported by
:mod:`soc.store.base`; the stores: :mod:`soc.store.sqlite_doc_query`,
:mod:`soc.store.search_doc_query`). The document twin of :mod:`soc.store.event_query`: the same
limits, value checks and cursor style.

**Fields** are dotted paths into a document body (``status``, ``rule.id``, ``group.source.ip``,
``entities.host.name``): letters, digits and ``_ @ -`` per part (:data:`FIELD_NAME`), no leading
``_`` and not the search store's id copy ``@soc_id``; anything else is a :class:`ValueError`
naming the field. The values of a field are everything found at its path, reading each dot
as object nesting *or* as part of a key (``{"entities": {"host.name": ["a", "b"]}}`` holds
``a`` and ``b`` at ``entities.host.name``), with lists -- also lists of objects -- flattened:
the way the search engine indexes a body. ``null``, objects and empty lists are no value.
``id`` is the document id.

**Values are data**: strings (no NUL, valid Unicode, at most
:data:`~soc.store.event_query.MAX_VALUE_LENGTH` characters), numbers and booleans; never query text. SQLite binds them as parameters, the search
engine gets them as ``term``/``prefix``/``range`` values or escaped ``wildcard`` patterns.

**What each operator means** (the same on both stores; a list field matches when any element
does):

* ``equals`` -- text compares case-insensitively, except on *id fields* (:func:`exact_field`:
  ``id``, a last part ``id`` or ending in ``_id``/``_ids``, ``agency``/``agencies``), which
  compare exactly. A value that reads as a number (``5``, ``"5"``) also equals the number 5,
  ``true``/``false`` also the booleans.
* ``not_equals`` -- not ``equals``: also documents without the field.
* ``in`` / ``contains_any`` (the same) -- ``equals`` any of a list of values.
* ``prefix`` -- a text value starts with (case-insensitive but on id fields).
* ``exists`` -- the field has a value (``False``: it has none).
* ``range`` -- ``(gte, lt)``, either bound ``None``. Number bounds (numbers, or text that is
  a number) compare with number values; any other text compares with text values bytewise --
  times as text compare correctly: an aware datetime or ISO 8601 text with a zone is first
  written as the one UTC text form of :func:`soc.model.iso` (``2025-01-31T08:15:00.000Z``).

**Free text** (``text``) is a case-insensitive substring of any text value of ``text_fields``.

**Sort** is by up to :data:`MAX_SORT` fields, all in ``order``, then by ``id`` (appended when
the last key is not ``id``: the order is total). A missing value sorts first ascending and last
descending; a list field sorts by its smallest value ascending and its largest descending;
text sorts bytewise (by code point). Sort on fields of one type (text or numbers).

**Cursor.** Keyset pages: the cursor holds the sort values of the last document of a page
(``d1.`` and base64url of ``[store dialect, collection, sort fields, order, values]``); the
next page starts strictly after it. No offsets: documents written between pages never shift a
page or repeat one. Opaque to callers; it belongs to the store, collection, sort and order
that issued it (anything else is a :class:`ValueError`).

**Totals** are exact up to ``track_total`` (default :data:`TRACK_TOTAL`); beyond it
``DocPage.total`` is ``track_total`` and ``total_exact`` is ``False`` -- on both stores.
``track_total=0`` counts nothing beyond the page (the total is the page's length, exact only
for a first page that is also the last): a page of a query that matches few documents of many
(free text) then costs only what it reads.

**Group-by counts** (``count_documents``): per value of up to :data:`MAX_GROUP_FIELDS` fields,
nested (the first field's values, within each the second's...), each level its ``size``
biggest buckets by count, ties by value; a document counts once under each of its values (a list
field), documents without a value of a level's field are left out of that level. Values come
back as stored (no case folding), whole numbers as ``int``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from soc.model import iso, parse_iso
from soc.store.event_query import (
    FIELD_NAME,
    MAX_FILTERS,
    MAX_IN_VALUES,
    MAX_PAGE_SIZE,
    MAX_PREFIX_LENGTH,
    MAX_TEXT_LENGTH,
    _shown,
    _text,
)

if TYPE_CHECKING:
    from soc.store.base import Doc

__all__ = ["DOC_OPS", "ID_FIELD", "MAX_COLLECTION_LENGTH", "MAX_GROUP_BUCKETS", "MAX_GROUP_FIELDS",
           "MAX_GROUP_SIZE", "MAX_SORT", "MAX_TEXT_FIELDS", "TRACK_TOTAL", "DocFilter", "DocPage", "DocQuery",
           "Forms", "body_values", "check_doc_field", "decode_doc_cursor", "encode_doc_cursor", "exact_field",
           "forms", "group_sizes", "number_key", "sort_value"]

DOC_OPS = ("equals", "not_equals", "in", "contains_any", "prefix", "exists", "range")
#: the document id as a field name
ID_FIELD = "id"
MAX_SORT = 4
MAX_TEXT_FIELDS = 16
MAX_GROUP_FIELDS = 3
#: buckets of one level of a group-by
MAX_GROUP_SIZE = 1000
#: buckets of all levels of one group-by together (the search engine's ``search.max_buckets``)
MAX_GROUP_BUCKETS = 65_535
#: documents a page counts at most by default (``DocQuery.track_total``)
TRACK_TOTAL = 10_000
MAX_TRACK_TOTAL = 2**31 - 1
MAX_COLLECTION_LENGTH = 200
MAX_FIELD_LENGTH = 256
MAX_DOC_CURSOR_LENGTH = 65_536
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
#: ISO 8601 text with a time and a zone (``Z`` or an offset): compared as canonical UTC text
_ZONED_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})", re.I)
_BAD_CURSOR = "invalid cursor: use the cursor of the previous page as it was given"


def check_doc_field(name: object, what: str = "field") -> str:
    """A document field name as given, or :class:`ValueError` (see the module docstring)."""
    if not isinstance(name, str):
        raise ValueError(f"{what}: a field name is text, not {type(name).__name__}")
    if len(name) > MAX_FIELD_LENGTH or not FIELD_NAME.fullmatch(name) or name.startswith("_") \
            or name.split(".")[0] == "@soc_id":
        raise ValueError(f"{what} {_shown(name)}: a field name is letters, digits and _ . @ - (dotted parts, at most "
                         f"{MAX_FIELD_LENGTH} characters, no leading _, not @soc_id)")
    return name


def exact_field(name: str) -> bool:
    """Whether ``equals``/``prefix`` compare exactly on this field: the document id and fields
    holding ids (a last part ``id``, ``..._id``, ``..._ids``, ``agency``, ``agencies``)."""
    last = name.rpartition(".")[2]
    return last in ("id", "agency", "agencies") or last.endswith(("_id", "_ids", "_agency", "_agencies"))


@dataclass(frozen=True, slots=True)
class Forms:
    """What an ``equals`` value compares with: text values (``text``), number values
    (``number``, when the value reads as one) and booleans (``boolean``, for true/false)."""

    text: str
    number: int | float | None
    boolean: bool | None


def forms(value: str) -> Forms:
    """The :class:`Forms` of a checked ``equals`` value."""
    number: int | float | None = None
    if _INTEGER.fullmatch(value):
        number = int(value)
    elif len(value) <= 40 and _NUMBER.fullmatch(value):
        parsed = float(value)
        if math.isfinite(parsed):
            number = int(parsed) if parsed.is_integer() and abs(parsed) < 2**53 else parsed
    lowered = value.lower()
    return Forms(value, number, True if lowered == "true" else False if lowered == "false" else None)


def number_key(value: Any) -> Any:
    """A number as group-by keys and cursors show it: whole floats as ``int``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _scalar(value: object, what: str) -> str:
    if isinstance(value, (Mapping, list, tuple, set, bytes)):
        raise ValueError(f"{what}: expected a text, number or boolean, not {type(value).__name__}")
    return _text(value, what)


def _bound(value: object, what: str) -> int | float | str | None:
    """One range bound: a number, or text (times as canonical UTC text)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{what}: a time needs a zone (an aware datetime)")
        return iso(value)
    if isinstance(value, bool):
        raise ValueError(f"{what}: a bound is a number or text, not {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or abs(value) >= 2**63:
            raise ValueError(f"{what}: {value!r} is out of range")
        return value
    text = _scalar(value, what)
    number = forms(text).number
    if number is not None:
        return number
    if _ZONED_TIME.match(text):
        try:
            moment = parse_iso(text.strip())
        except ValueError:
            raise ValueError(f"{what}: {_shown(text)} is not an ISO 8601 time") from None
        if moment.tzinfo is not None:
            return iso(moment)
    return text


@dataclass(frozen=True, slots=True)
class DocFilter:
    """One condition on one document field: ``op`` is one of :data:`DOC_OPS` (see the module
    docstring). ``value``: a text, number or boolean for ``equals``/``not_equals``/``prefix``,
    a list of them for ``in``/``contains_any``, ``(gte, lt)`` (or ``{"gte": .., "lt": ..}``)
    for ``range``, ``True``/``False`` for ``exists``. Checked and put in canonical form when
    made: equality values as text (:func:`forms`), range bounds as numbers or text."""

    field: str
    op: str
    value: Any = None
    exact: bool = field(init=False, default=False, compare=False)

    def __post_init__(self) -> None:
        check_doc_field(self.field)
        if not isinstance(self.op, str) or self.op not in DOC_OPS:
            raise ValueError(f"operator {_shown(self.op)}: use one of {', '.join(DOC_OPS)}")
        object.__setattr__(self, "exact", exact_field(self.field))
        object.__setattr__(self, "value", self._checked())

    def _checked(self) -> Any:
        op, value, name = self.op, self.value, self.field
        if op in ("equals", "not_equals"):
            return _scalar(value, name)
        if op in ("in", "contains_any"):
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                raise ValueError(f"{name} {op}: expected a list of values, not {type(value).__name__}")
            values = list(value)
            if not values or len(values) > MAX_IN_VALUES:
                raise ValueError(f"{name} {op}: between 1 and {MAX_IN_VALUES} values, not {len(values)}")
            return tuple(dict.fromkeys(_scalar(v, name) for v in values))
        if op == "prefix":
            text = _scalar(value, f"{name} prefix")
            if not text:
                raise ValueError(f"{name} prefix: empty (use exists)")
            if len(text) > MAX_PREFIX_LENGTH:
                raise ValueError(f"{name} prefix: {len(text):,} characters, at most {MAX_PREFIX_LENGTH:,}")
            return text
        if op == "exists":
            if value is None:
                return True
            if not isinstance(value, bool):
                raise ValueError(f"{name} exists: true or false, not {_shown(value)}")
            return value
        return self._range()

    def _range(self) -> tuple[Any, Any]:
        value, name = self.value, self.field
        if isinstance(value, Mapping):
            if set(value) - {"gte", "lt"}:
                raise ValueError(f"{name} range: only gte and lt, not {', '.join(map(str, set(value) - {'gte', 'lt'}))}")
            bounds = (value.get("gte"), value.get("lt"))
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            bounds = (value[0], value[1])
        else:
            raise ValueError(f"{name} range: expected (gte, lt) or {{'gte': .., 'lt': ..}}")
        gte, lt = (_bound(b, f"{name} range") for b in bounds)
        if gte is None and lt is None:
            raise ValueError(f"{name} range: give gte, lt or both")
        if gte is not None and lt is not None and isinstance(gte, str) != isinstance(lt, str):
            raise ValueError(f"{name} range: both bounds numbers or both text, not {gte!r} and {lt!r}")
        return gte, lt

    @property
    def values(self) -> tuple[str, ...]:
        """The values an equality operator compares with (one for ``equals``/``not_equals``)."""
        return self.value if self.op in ("in", "contains_any") else (self.value,)


def _filters(items: Any) -> tuple[DocFilter, ...]:
    if items is None:
        return ()
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise ValueError("filters: a list of (field, op, value) or DocFilter")
    out: list[DocFilter] = []
    for item in items:
        if isinstance(item, DocFilter):
            out.append(item)
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
            out.append(DocFilter(*item))
        else:
            raise ValueError(f"filter {_shown(item)}: expected (field, op, value) or a DocFilter")
        if len(out) > MAX_FILTERS:
            raise ValueError(f"at most {MAX_FILTERS} filters")
    if sum(len(f.value) for f in out if f.op in ("in", "contains_any")) > MAX_IN_VALUES:
        raise ValueError(f"at most {MAX_IN_VALUES} values over all in filters")
    return tuple(out)


def _fields(items: Any, what: str, limit: int) -> tuple[str, ...]:
    if isinstance(items, str):
        items = (items,)
    if isinstance(items, (bytes, Mapping)) or not isinstance(items, Iterable):
        raise ValueError(f"{what}: a list of field names")
    names = tuple(check_doc_field(name, what) for name in items)
    if len(names) > limit:
        raise ValueError(f"{what}: at most {limit} fields")
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: a field is named twice")
    return names


def _whole(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} {_shown(value)}: a whole number from {low:,} to {high:,}")
    return value


@dataclass(frozen=True, slots=True)
class DocQuery:
    """Which documents of ``collection`` (see the module docstring).

    ``filters``: :class:`DocFilter` or ``(field, op, value)`` tuples, all must hold; ``text``:
    a case-insensitive substring of a text value of one of ``text_fields``; ``sort``: up to
    :data:`MAX_SORT` fields (``id`` is appended), all in ``order`` (``asc`` or ``desc``);
    ``size``: documents per page (1 to :data:`MAX_PAGE_SIZE`); ``cursor``: where the previous
    page ended (:attr:`DocPage.cursor`); ``track_total``: count matching documents up to this
    many (0: not beyond the page). Invalid input raises :class:`ValueError` here, before any store sees it."""

    collection: str
    filters: tuple[DocFilter, ...] = ()
    text: str | None = None
    text_fields: tuple[str, ...] = ()
    sort: tuple[str, ...] = (ID_FIELD,)
    order: str = "asc"
    size: int = 100
    cursor: str | None = None
    track_total: int = TRACK_TOTAL

    def __post_init__(self) -> None:
        collection = self.collection
        if not isinstance(collection, str) or not collection or len(collection) > MAX_COLLECTION_LENGTH:
            raise ValueError(f"collection {_shown(collection)}: a name of 1 to {MAX_COLLECTION_LENGTH} characters")
        _text(collection, "collection")
        object.__setattr__(self, "filters", _filters(self.filters))
        text = None if self.text is None else _text(self.text, "free text", MAX_TEXT_LENGTH)
        object.__setattr__(self, "text", text or None)
        object.__setattr__(self, "text_fields", _fields(self.text_fields, "text_fields", MAX_TEXT_FIELDS))
        if self.text is not None and not self.text_fields:
            raise ValueError("free text needs text_fields: the fields to look in")
        sort = _fields(self.sort, "sort", MAX_SORT + 1)
        if not sort or sort[-1] != ID_FIELD:
            if ID_FIELD in sort:
                raise ValueError("sort: id is the last sort field (it makes the order total)")
            sort = (*sort, ID_FIELD)
        if len(sort) > MAX_SORT + 1:
            raise ValueError(f"sort: at most {MAX_SORT} fields before id")
        object.__setattr__(self, "sort", sort)
        if self.order not in ("asc", "desc"):
            raise ValueError(f"order {_shown(self.order)}: use asc or desc")
        _whole(self.size, "size", 1, MAX_PAGE_SIZE)
        _whole(self.track_total, "track_total", 0, MAX_TRACK_TOTAL)
        if self.cursor == "":
            object.__setattr__(self, "cursor", None)
        elif self.cursor is not None and (not isinstance(self.cursor, str) or len(self.cursor) > MAX_DOC_CURSOR_LENGTH):
            raise ValueError(_BAD_CURSOR)

    @property
    def descending(self) -> bool:
        return self.order == "desc"


@dataclass(frozen=True, slots=True)
class DocPage:
    """One page of documents in the query's order, the cursor of the next page (``None``: this
    is the last) and how many documents match in all (``total_exact`` ``False``: at least
    ``total``, see ``DocQuery.track_total``)."""

    docs: list[Doc]
    cursor: str | None
    total: int
    total_exact: bool = True


def group_sizes(group_by: Sequence[str], size: int | Sequence[int]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Checked group-by fields and the bucket count of each level (``size``: one for every
    level, or one per level)."""
    fields = _fields(group_by, "group_by", MAX_GROUP_FIELDS)
    if isinstance(size, int) and not isinstance(size, bool):
        sizes = (size,) * len(fields)
    elif isinstance(size, (list, tuple)) and len(size) == len(fields):
        sizes = tuple(size)
    else:
        raise ValueError(f"size {_shown(size)}: a whole number, or one per group_by field")
    return fields, tuple(_whole(s, "size", 1, MAX_GROUP_SIZE) for s in sizes)


def encode_doc_cursor(dialect: str, query: DocQuery, values: Sequence[Any]) -> str:
    """The cursor after the document with these sort values (see the module docstring)."""
    raw = json.dumps([dialect, query.collection, list(query.sort), query.order, list(values)],
                     separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return "d1." + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_doc_cursor(query: DocQuery, dialect: str) -> list[Any]:
    """The sort values of ``query.cursor`` (one per sort field: text, number or ``None``),
    issued by :func:`encode_doc_cursor` for this store dialect, collection, sort and order;
    anything else raises :class:`ValueError`."""
    cursor = query.cursor
    if not isinstance(cursor, str) or not cursor.startswith("d1.") or len(cursor) > MAX_DOC_CURSOR_LENGTH:
        raise ValueError(_BAD_CURSOR)
    body = cursor[3:]
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise ValueError(_BAD_CURSOR) from None
    if not (isinstance(data, list) and len(data) == 5 and isinstance(data[4], list)):
        raise ValueError(_BAD_CURSOR)
    if data[0] != dialect:
        raise ValueError("invalid cursor: it was issued by another kind of store")
    if data[1] != query.collection or data[2] != list(query.sort) or data[3] != query.order:
        raise ValueError("invalid cursor: it continues another query (collection, sort or order)")
    values = data[4]
    if len(values) != len(query.sort) or not isinstance(values[-1], str):
        raise ValueError(_BAD_CURSOR)
    for value in values:
        if value is None or isinstance(value, str) and "\x00" not in value:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or abs(value) >= 2**63:
            raise ValueError(_BAD_CURSOR)
    return values


# -- reading bodies (the SQLite functions and the tests' oracle share these) ----------------------
def body_values(body: Any, parts: Sequence[str]) -> list[Any]:
    """The values of the dotted field ``parts`` in a document body (see the module docstring):
    texts, numbers and booleans, in document order, duplicates kept."""
    out: list[Any] = []
    _collect(body, list(parts), out)
    return out


def _collect(node: Any, parts: list[str], out: list[Any]) -> None:
    if isinstance(node, list):
        for item in node:
            _collect(item, parts, out)
        return
    if not parts:
        if isinstance(node, (str, int, float)) and (not isinstance(node, float) or math.isfinite(node)):
            out.append(node)
        return
    if not isinstance(node, dict):
        return
    for i in range(1, len(parts) + 1):
        key = ".".join(parts[:i])
        if key in node:
            _collect(node[key], parts[i:], out)


def sort_value(values: Sequence[Any], descending: bool) -> Any:
    """The value a document sorts by: the smallest (ascending) or largest (descending) of its
    values, numbers before text, booleans as 0 and 1; ``None`` when it has none."""
    keyed = [(1, v) if isinstance(v, str) else (0, int(v) if isinstance(v, bool) else v) for v in values]
    if not keyed:
        return None
    return (max(keyed) if descending else min(keyed))[1]
