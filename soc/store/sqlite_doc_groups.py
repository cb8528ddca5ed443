"""Group-by counts of document queries in the embedded store (``count_documents`` of
:mod:`soc.store.sqlite_doc_query`): nested groups, each level's biggest first.

**Fields in columns** (``id`` aside) lead the way in one pass: ``GROUP BY`` all of them at once
over the query's rows -- an index of the field table when one has them in that order, e.g.
agency then rule -- keeping ``NULL`` in all but the first, so that a document without a value
of a deeper field still counts in the groups above it; each level's counts are then sums of
those rows. (More than :data:`MAX_PASS_ROWS` combinations, e.g. a time field: the per-level
queries below instead.)

**Other fields**, and what follows them, take one query per level: the rows of the query
joined with ``json_each`` of the field's values (``DISTINCT`` per document: a document counts
once under each value), restricted to the groups chosen at the level above -- first through
the columns among them (``IN`` over the parents, which an index serves), then exactly -- and
ranked within each parent by ``ROW_NUMBER()``.

Each group is ``(value, class)`` per field while counting (class 1: a JSON boolean, which
``json_each`` gives as 1 or 0), shown as callers see it at the end: booleans as ``bool``,
whole floats as ``int``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from soc.store.doc_query import ID_FIELD, MAX_GROUP_BUCKETS, number_key
from soc.store.sqlite_doc_fields import INDEXES

if TYPE_CHECKING:
    from soc.store.sqlite_doc_query import _Source

__all__ = ["MANY_ROWS", "MAX_PASS_ROWS", "group_counts"]

#: most column combinations the one-pass grouping reads before giving way to per-level queries
MAX_PASS_ROWS = 200_000
#: from this many matching rows on, a grouping reads a grouping index whole rather than sort them
MANY_ROWS = 50_000
Run = Callable[[str, list[Any]], list[Any]]
Level = list[tuple[tuple[Any, ...], int]]


def group_counts(run: Run, source: _Source, built: tuple[list[str], list[Any]], fields: tuple[str, ...],
                 sizes: tuple[int, ...]) -> list[tuple[tuple[Any, ...], int]]:
    """The leaf groups of ``fields`` among the rows ``built`` selects, in nested order."""
    lead = 0
    while lead < len(fields) and fields[lead] != ID_FIELD and source.column(fields[lead]) is not None:
        lead += 1
    levels: list[Level] = (_column_levels(run, source, built, fields[:lead], sizes[:lead]) or []) if lead else []
    _check(levels)
    for depth in range(len(levels) + 1, len(fields) + 1):
        parents = [key for key, _ in levels[-1]] if levels else None
        if parents == []:
            return []
        levels.append(_group_level(run, source, built, fields[:depth], sizes[depth - 1], parents))
        _check(levels)
    return _nested(levels)


def _check(levels: list[Level]) -> None:
    if sum(len(level) for level in levels) > MAX_GROUP_BUCKETS:
        raise ValueError(f"more than {MAX_GROUP_BUCKETS:,} groups: ask for fewer per level (size)")


def _order(value: Any) -> tuple[int, Any]:
    """Values in SQLite's (and the search engine's) order: numbers, then text bytewise."""
    return (1, value) if isinstance(value, str) else (0, value)


def _column_levels(run: Run, source: _Source, built: tuple[list[str], list[Any]], fields: tuple[str, ...],
                   sizes: tuple[int, ...]) -> list[Level] | None:
    """Every level of leading column fields from one ``GROUP BY``; ``None`` when there are
    more than :data:`MAX_PASS_ROWS` combinations."""
    clauses, params = built
    columns = [source.column(name) for name in fields]
    from_, first = source.from_(source.bodies)
    where = " AND ".join([*first[:1], *clauses, f"{columns[0]} IS NOT NULL"])
    hint = _grouping_index(source, fields)
    if hint and run(f"SELECT COUNT(*) FROM (SELECT 1 FROM {from_} WHERE {where} LIMIT ?)",
                    [*first[1:], *params, MANY_ROWS])[0][0] >= MANY_ROWS:
        from_ = f"{from_} INDEXED BY {hint}"
    listed = ", ".join(str(c) for c in columns)
    rows = run(f"SELECT {listed}, COUNT(*) FROM {from_} WHERE {where} GROUP BY {listed} LIMIT ?",
               [*first[1:], *params, MAX_PASS_ROWS + 1])
    if len(rows) > MAX_PASS_ROWS:
        return None
    totals: list[dict[tuple[Any, ...], int]] = [{} for _ in fields]
    for row in rows:
        for depth in range(len(fields)):
            if row[depth] is None:
                break
            prefix = tuple(row[:depth + 1])
            totals[depth][prefix] = totals[depth].get(prefix, 0) + int(row[-1])
    levels: list[Level] = []
    chosen: list[tuple[Any, ...]] = [()]
    for depth, size in enumerate(sizes):
        children: dict[tuple[Any, ...], list[tuple[tuple[Any, ...], int]]] = {}
        for prefix, count in totals[depth].items():
            children.setdefault(prefix[:-1], []).append((prefix, count))
        level = []
        for parent in chosen:
            ranked = sorted(children.get(parent, ()), key=lambda item: (-item[1], _order(item[0][-1])))
            level.extend(ranked[:size])
        chosen = [prefix for prefix, _ in level]
        levels.append([(tuple(v for value in prefix for v in (value, 0)), count) for prefix, count in level])
    return levels


def _grouping_index(source: _Source, fields: tuple[str, ...]) -> str | None:
    """An index of the field table that starts with the grouped columns (in any order, without a
    collation) and holds every column the query reads. For :data:`MANY_ROWS` rows or more,
    reading it whole in its order counts the groups without sorting the rows; SQLite, knowing
    nothing of how many rows a time range holds, would read a month of alerts through the time
    index and sort a million of them (0.8 s, not 0.19 s, per count of a month's alerts by rule
    at 1,000,000 alerts). Fewer rows: its own plan (a day's alerts through the time index)."""
    if source.bodies or source.table is None:
        return None
    for name, spec in INDEXES.get(source.collection, {}).items():
        names = [column.partition(" ")[0] for column in spec]
        if set(spec[:len(fields)]) == set(fields) and source.used <= set(names):
            return f"{source.table}_{name}"
    return None


def _group_level(run: Run, source: _Source, built: tuple[list[str], list[Any]], fields: tuple[str, ...],
                 size: int, parents: list[tuple[Any, ...]] | None) -> Level:
    """The ``size`` biggest groups of ``fields`` within each group of the level above
    (``parents``: their ``(value, class)`` pairs, flattened)."""
    clauses, params = built
    select, joins, join_params, more, more_params = [], [], [], [], []
    for i, name in enumerate(fields):
        column = source.column(name)
        if column is not None:
            select += [f"{column} AS v{i}", f"0 AS c{i}"]
            more.append(f"{column} IS NOT NULL")
            continue
        kind = f"CASE j{i}.type WHEN 'true' THEN 1 WHEN 'false' THEN 1 ELSE 0 END AS c{i}"
        if name in source.listed:  # its rows in the values table
            joins.append(f"{source.values} AS j{i}")
            select += [f"j{i}.value AS v{i}", kind]
            more.append(f"j{i}.id = {source.id} AND j{i}.field = ?")
            more_params.append(name)
            continue
        each, each_params = source.each(name)
        joins.append(f"{each} AS j{i}")
        join_params.extend(each_params)
        select += [f"j{i}.value AS v{i}", kind]
        more.append(f"j{i}.type IN ('text', 'integer', 'real', 'true', 'false')")
    last = len(fields) - 1
    parents_json = orjson.dumps([list(p) for p in parents]).decode() if parents is not None else None
    if parents is not None:  # only the rows of the chosen parents, through the columns among them
        picked = [(i, source.column(name)) for i, name in enumerate(fields[:last]) if source.column(name) is not None]
        if picked:
            left = ", ".join(str(column) for _, column in picked)
            right = ", ".join(f"json_extract(p.value, '$[{2 * i}]')" for i, _ in picked)
            more.append(f"({left}) IN (SELECT {right} FROM json_each(?) AS p)")
            more_params.append(parents_json)
    from_, first = source.from_(source.bodies)
    # CROSS JOIN: the documents drive (through the field table's indexes), their values follow
    from_ = f"({from_})" + "".join(f" CROSS JOIN {join}" for join in joins) if joins else from_
    where = " AND ".join([*first[:1], *clauses, *more])
    rows = (f"SELECT {'DISTINCT ' if joins else ''}{source.id} AS id, "
            f"{', '.join(select)} FROM {from_} WHERE {where}")
    rows_params = [*join_params, *first[1:], *params, *more_params]
    keys = [f"v{i}, c{i}" for i in range(len(fields))]
    if parents is None:
        found = run(f"SELECT {keys[0]}, COUNT(*) AS n FROM ({rows}) GROUP BY {keys[0]} ORDER BY n DESC, v0, c0 LIMIT ?",
                    [*rows_params, size])
    else:
        picks = ", ".join(f"json_extract(p.value, '$[{2 * i}]') AS p{i}, json_extract(p.value, '$[{2 * i + 1}]') AS q{i}"
                          for i in range(last))
        on = " AND ".join(f"x.v{i} = p.p{i} AND x.c{i} = p.q{i}" for i in range(last))
        grouped = (f"SELECT {', '.join(keys)}, COUNT(*) AS n FROM ({rows}) AS x "
                   f"JOIN (SELECT {picks} FROM json_each(?) AS p) AS p ON {on} GROUP BY {', '.join(keys)}")
        found = run(f"SELECT * FROM (SELECT g.*, ROW_NUMBER() OVER (PARTITION BY {', '.join(keys[:last])} ORDER BY "
                    f"n DESC, v{last}, c{last}) AS r FROM ({grouped}) AS g) WHERE r <= ? ORDER BY r",
                    [*rows_params, parents_json, size])
    return [(tuple(row[:2 * len(fields)]), int(row[2 * len(fields)])) for row in found]


def _nested(levels: list[Level]) -> list[tuple[tuple[Any, ...], int]]:
    """The leaf groups in nested order: the first level's biggest first, within each its
    children biggest first..., keys as callers see them."""
    children: list[dict[tuple[Any, ...], Level]] = []
    for level in levels[1:]:
        table: dict[tuple[Any, ...], Level] = {}
        for key, count in level:
            table.setdefault(key[:-2], []).append((key, count))
        children.append(table)
    out: list[tuple[tuple[Any, ...], int]] = []

    def walk(key: tuple[Any, ...], count: int, depth: int) -> None:
        if depth == len(levels) - 1:
            out.append((tuple(_shown(key[i], key[i + 1]) for i in range(0, len(key), 2)), count))
            return
        for child, n in children[depth].get(key, ()):  # biggest first (ranked above)
            walk(child, n, depth + 1)

    for key, count in levels[0]:
        walk(key, count, 0)
    return out


def _shown(value: Any, kind: int) -> Any:
    return bool(value) if kind else number_key(value)
