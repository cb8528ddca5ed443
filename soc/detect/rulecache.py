"""The compiled-rule cache: a second hunt, or a restart, skips YAML parsing and pySigma conversion.

One entry per rule file, keyed by a hash of the file's path and content and of the *context*
that decides what a compilation gives: the query dialect, the versions of pySigma, its backends
and pipelines and PyYAML, the source of the project's compiler (``soc/detect/*.py``,
``soc/catalog.py``), the processing pipelines and the field catalogue (``ingest/``) and the
placeholders (``detections/placeholders.yml``). Change any of them and the entry is not found:
the file is compiled again. An entry holds, in file order, each rule's load problem or its key and
compiled :class:`~soc.detect.compiler.Detection` (a correlation rule is kept as a key only).

Linking is done on every load, never cached: duplicate ids across files, correlations resolved
against all rules (the files holding correlations, and the files of the rules they name, are
parsed again -- YAML only, nothing converted), rules only correlations use. So
:func:`load_compiled` gives exactly ``compile_rules(load_rules(dirs), dialect)`` (a test compares
them on the project's rules and on SigmaHQ's).

Safety: an entry is a pickle of this module's and the compiler's own data classes, written
atomically into a folder this process's user owns and no one else may write (else the cache is
not used). It is read by an unpickler that refuses every other class, and carries a format
version and its own key: a corrupted, foreign or stale entry is ignored and rebuilt, never
trusted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from sigma.correlations import SigmaCorrelationRule

from soc.catalog import default_catalog
from soc.config import Settings, content_dir
from soc.detect.compiler import (
    CacheFigures,
    Detection,
    RuleSet,
    _compile_event_rule,
    link_correlations,
)
from soc.detect.rules import (
    AnyRule,
    LoadedRules,
    LoadProblem,
    _resolve_correlations,
    parse_rule_file,
    rule_files,
    rule_info,
    rule_key,
)

log = logging.getLogger(__name__)

#: bump when the layout of an entry changes
FORMAT = 1
_MAGIC = "soc-rule-cache"
_PACKAGES = ("pySigma", "pySigma-backend-sqlite", "pySigma-backend-elasticsearch", "pySigma-backend-opensearch",
             "pysigma-pipeline-windows", "pysigma-pipeline-sysmon", "PyYAML")
_SOURCES = ("detect/compiler.py", "detect/rules.py", "detect/pipelines.py", "detect/sqlite_backend.py",
            "detect/search_backend.py", "detect/rulecache.py", "detect/extensions.py", "catalog.py",
            "store/search_mappings.py", "store/ecs_fields.json")
#: the only classes an entry may hold
_ALLOWED = {("soc.detect.compiler", "Detection"), ("soc.detect.compiler", "RuleReport"),
            ("soc.detect.compiler", "CorrelationSpec"), ("soc.detect.rules", "RuleInfo"),
            ("soc.detect.rules", "LoadProblem"), ("soc.detect.rulecache", "FileEntry"),
            ("soc.detect.rulecache", "RuleItem")}


@dataclass
class RuleItem:
    """One rule of a file: the problem that keeps it out, or its keys and compiled detection."""

    problem: LoadProblem | None = None
    key: str = ""  # str(id or name): the key duplicates are found by
    id: str = ""  # str(rule.id): what correlations may name
    name: str | None = None
    correlation: bool = False
    detection: Detection | None = None  # an event rule, compiled (before correlation linking)


@dataclass
class FileEntry:
    items: list[RuleItem] = field(default_factory=list)

    @property
    def rules(self) -> int:
        return sum(item.problem is None for item in self.items)

    @property
    def has_correlation(self) -> bool:
        return any(item.correlation for item in self.items)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"class {module}.{name} is not allowed in the rule cache")
        return super().find_class(module, name)  # type: ignore[no-any-return]


def _digest_files(paths: Iterable[Path], h: Any) -> None:
    for path in paths:
        h.update(str(path.name).encode() + b"\0")
        h.update(path.read_bytes() if path.is_file() else b"(none)")
        h.update(b"\0")


@cache
def context_key(dialect: str) -> str:
    """What, besides a rule file, decides what compiling it gives (see the module docstring)."""
    h = hashlib.sha256(f"{_MAGIC}\0{FORMAT}\0{dialect}\0{sys.version_info[:2]}\0".encode())
    for package in _PACKAGES:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "-"
        h.update(f"{package}={version}\0".encode())
    soc_dir = Path(__file__).resolve().parent.parent
    _digest_files((soc_dir / s for s in _SOURCES), h)
    ingest = content_dir("ingest")
    _digest_files([ingest / "datasets.yml", ingest / "fields.yml", *sorted((ingest / "pipelines").glob("*.yml")),
                   content_dir("detections") / "placeholders.yml"], h)
    return h.hexdigest()


class RuleCache:
    """Entries in ``folder`` (created private if missing). If the folder is not this user's or
    others may write to it, the cache is off (a warning says so) and every rule is compiled."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.usable = self._check()
        self.rebuilt = 0

    def _check(self) -> bool:
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            st = self.folder.lstat()
        except OSError as error:
            log.warning("compiled-rule cache off: cannot use %s: %s", self.folder, error)
            return False
        mine = not hasattr(os, "getuid") or st.st_uid == os.getuid()
        if self.folder.is_symlink() or not self.folder.is_dir() or not mine or st.st_mode & 0o022:
            log.warning("compiled-rule cache off: %s is not a private folder of this user", self.folder)
            return False
        return True

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.pickle"

    def get(self, key: str) -> FileEntry | None:
        if not self.usable:
            return None
        path = self._path(key)
        try:
            if path.is_symlink():
                raise ValueError("a symbolic link")
            with path.open("rb") as f:
                magic, version, stored_key, entry = _Unpickler(f).load()
            if (magic, version, stored_key) != (_MAGIC, FORMAT, key) or not isinstance(entry, FileEntry) \
                    or not all(isinstance(i, RuleItem) for i in entry.items):
                raise ValueError("not an entry of this cache")
        except FileNotFoundError:
            return None
        except Exception as error:  # noqa: BLE001 -- any unreadable entry is rebuilt, never trusted
            log.warning("compiled-rule cache: ignoring entry %s (%s); compiling again", path.name, error)
            self.rebuilt += 1
            return None
        return entry

    def put(self, key: str, entry: FileEntry) -> None:
        if not self.usable:
            return
        data = pickle.dumps((_MAGIC, FORMAT, key, entry), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}-", suffix=".tmp", dir=self.folder)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self._path(key))
        except OSError as error:
            log.warning("compiled-rule cache: cannot store %s: %s", key, error)


def rule_cache_dir(settings: Settings) -> Path | None:
    """The compiled-rule cache folder of ``settings`` (``None``: the cache is off)."""
    if not settings.detection.rule_cache:
        return None
    return settings.detection.rule_cache_dir or settings.data_dir / "rule-cache"


def entry_key(context: str, path: Path, data: bytes) -> str:
    h = hashlib.sha256(f"{context}\0{path}\0".encode())
    h.update(data)
    return h.hexdigest()


def _build_entry(parsed: list[AnyRule | LoadProblem], dialect: str) -> FileEntry:
    catalog = default_catalog()
    entry = FileEntry()
    for rule in parsed:
        if isinstance(rule, LoadProblem):
            entry.items.append(RuleItem(problem=rule))
            continue
        item = RuleItem(key=rule_key(rule), id=str(rule.id), name=rule.name,
                        correlation=isinstance(rule, SigmaCorrelationRule))
        if not item.correlation:
            item.detection = _compile_event_rule(rule, rule_info(rule), dialect, catalog)  # type: ignore[arg-type]
        entry.items.append(item)
    return entry


def load_compiled(directories: Iterable[Path], dialect: str = "sqlite", *, cache_dir: Path | None,
                  progress: Callable[[int, int], None] | None = None,
                  compile_progress: Callable[[int, int], None] | None = None) -> RuleSet:
    """``compile_rules(load_rules(directories), dialect)`` (default catalogue), with every rule
    file found in the cache at ``cache_dir`` taken from it (``None``: no cache). The rule set's
    ``cache`` says how many rules came from the cache and how many were compiled.
    ``progress(files_done, files_total)`` is called before the first file and after each (files
    read, looked up and, if not in the cache, parsed); ``compile_progress(rules_done,
    rules_total)`` likewise over the rules of the files that were not in the cache."""
    store = RuleCache(cache_dir) if cache_dir is not None else None
    context = context_key(dialect)
    paths = list(rule_files(directories))
    files: list[tuple[Path, bytes, FileEntry, list[AnyRule | LoadProblem] | None]] = []
    missed: list[tuple[int, str]] = []
    for done, path in enumerate(paths):
        if progress is not None:
            progress(done, len(paths))
        data = path.read_bytes()
        key = entry_key(context, path, data)
        entry = store.get(key) if store is not None else None
        parsed = None
        if entry is None:
            parsed = parse_rule_file(path, data)
            missed.append((len(files), key))
            entry = FileEntry()
        files.append((path, data, entry, parsed))
    if progress is not None:
        progress(len(paths), len(paths))
    to_compile = sum(not isinstance(r, LoadProblem) for fi, _ in missed for r in files[fi][3] or ())
    compiled = 0
    for fi, key in missed:
        if compile_progress is not None:
            compile_progress(compiled, to_compile)
        path, data, _, parsed = files[fi]
        entry = _build_entry(parsed or [], dialect)
        if store is not None:
            store.put(key, entry)
        compiled += entry.rules
        files[fi] = (path, data, entry, parsed)
    if compile_progress is not None:
        compile_progress(compiled, to_compile)
    from_cache = sum(entry.rules for _, _, entry, _ in files) - compiled

    # load_rules: problems in file order, the first rule of a key wins
    problems: list[LoadProblem] = []
    seen: dict[str, str] = {}
    winners: list[tuple[int, int]] = []
    for fi, (path, _, entry, _) in enumerate(files):
        for ii, item in enumerate(entry.items):
            if item.problem is not None:
                problems.append(item.problem)
            elif item.key in seen:
                problems.append(LoadProblem(str(path), f"duplicate rule id {item.key} (first in {seen[item.key]})"))
            else:
                seen[item.key] = str(path)
                winners.append((fi, ii))

    detections: dict[str, Detection] = {}
    for fi, ii in winners:
        item = files[fi][2].items[ii]
        if item.detection is not None:
            detections[item.detection.info.id] = item.detection
    correlated = [(fi, ii) for fi, ii in winners if files[fi][2].items[ii].correlation]
    if correlated:
        rules = _linked_rules(files, winners, correlated)
        sub = LoadedRules(rules=rules)
        _resolve_correlations(sub)
        problems.extend(sub.problems)
        link_correlations(sub.rules, detections)
    figures = CacheFigures(from_cache, compiled, store.rebuilt if store is not None else 0)
    return RuleSet(dialect=dialect, detections=detections, problems=problems,
                   cache=figures if store is not None and store.usable else None)


def _linked_rules(files: list[tuple[Path, bytes, FileEntry, list[AnyRule | LoadProblem] | None]],
                  winners: list[tuple[int, int]], correlated: list[tuple[int, int]]) -> list[AnyRule]:
    """The rule objects correlation resolution needs, in load order: every winning rule of the files
    that hold a correlation or a rule a correlation names (by id or name), parsed again if needed."""
    parsed: dict[int, list[AnyRule | LoadProblem]] = {}

    def rules_of(fi: int) -> list[AnyRule | LoadProblem]:
        if fi not in parsed:
            path, data, _, done = files[fi]
            parsed[fi] = done if done is not None else parse_rule_file(path, data)
        return parsed[fi]

    by_ref: dict[str, set[int]] = {}
    for fi, ii in winners:
        item = files[fi][2].items[ii]
        by_ref.setdefault(item.id, set()).add(fi)
        if item.name:
            by_ref.setdefault(item.name, set()).add(fi)
    needed = {fi for fi, _ in correlated}
    for fi, ii in correlated:
        rule = rules_of(fi)[ii]
        for ref in getattr(rule, "rules", None) or ():
            needed |= by_ref.get(ref.reference, set())
    out: list[AnyRule] = []
    for fi, ii in winners:
        if fi in needed:
            rule = rules_of(fi)[ii]
            assert not isinstance(rule, LoadProblem)  # the same content parses the same way
            out.append(rule)
    return out
