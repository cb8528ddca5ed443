"""Loading Sigma rules from folders: the project's ``detections/`` plus any packs the user names.

Every file is loaded on its own, so one broken file is reported and never stops the rest. Rules
are keyed by their Sigma id; a second rule with an id already seen is reported, not loaded.
Correlation rules are resolved against all loaded rules (by id or name), wherever they live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from soc.detect.extensions import rewrite

AnyRule = SigmaRule | SigmaCorrelationRule
#: the C YAML loader where PyYAML was built with libyaml, else the pure-Python one (same documents)
_YAML_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: directories never descended into when collecting rule files
_SKIP_DIRS = {"samples", "regression_data", "tests", ".git", "deprecated", "unsupported"}
#: YAML files next to rules that are data, not rules (regression info, site placeholders)
_NOT_RULES = {"info.yml", "placeholders.yml"}


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """What an alert says about the rule that raised it (the DRL licence needs the author)."""

    id: str
    title: str
    level: str
    author: str
    tags: tuple[str, ...]
    version: str
    status: str
    description: str
    references: tuple[str, ...]
    falsepositives: tuple[str, ...]
    path: str

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id, "title": self.title, "level": self.level, "author": self.author,
            "tags": list(self.tags), "version": self.version, "status": self.status,
            "description": self.description, "references": list(self.references),
            "falsepositives": list(self.falsepositives), "path": self.path,
        }


@dataclass
class LoadProblem:
    path: str
    error: str


@dataclass
class LoadedRules:
    rules: list[AnyRule] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)


def rule_info(rule: AnyRule) -> RuleInfo:
    level = rule.level.name.lower() if rule.level else "medium"
    version = str(rule.modified or rule.date or "1")
    return RuleInfo(
        id=str(rule.id or rule.name or rule.title),
        title=rule.title or str(rule.id),
        level=level,
        author=rule.author or "unknown",
        tags=tuple(str(t) for t in (rule.tags or [])),
        version=version,
        status=rule.status.name.lower() if rule.status else "",
        description=(rule.description or "").strip(),
        references=tuple(getattr(rule, "references", None) or ()),
        falsepositives=tuple(str(f) for f in (getattr(rule, "falsepositives", None) or ())),
        path=str(rule.source.path) if rule.source and rule.source.path else "",
    )


def rule_files(directories: Iterable[Path]) -> Iterator[Path]:
    for directory in directories:
        directory = Path(directory)
        if directory.is_file():
            yield directory
            continue
        if not directory.is_dir():
            raise FileNotFoundError(f"rule folder {directory} does not exist")
        for path in sorted(directory.rglob("*.yml")):
            if not _SKIP_DIRS.intersection(path.relative_to(directory).parts[:-1]) and path.name not in _NOT_RULES:
                yield path


def rule_key(rule: AnyRule) -> str:
    """The key a rule is loaded under (its id, else its name)."""
    return str(rule.id or rule.name or "")


def parse_rule_file(path: Path, data: bytes) -> list[AnyRule | LoadProblem]:
    """The rules of one file's content ``data`` (each a rule, or the problem that keeps it out), in
    file order; a file that cannot be read at all gives one problem. YAML is read with the C loader
    where PyYAML has it (the same documents as the pure-Python one, several times faster)."""
    try:
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text() reads it
        docs = list(yaml.load_all(text, Loader=_YAML_LOADER))  # noqa: S506 (a safe loader)
        docs = [rewrite(doc) for doc in docs]  # the project's correlation types (soc.detect.extensions)
        collection = SigmaCollection.from_dicts(docs, collect_errors=True, source=SigmaRuleLocation(path),
                                                resolve_references=False)
    except (SigmaError, ValueError, UnicodeDecodeError, yaml.YAMLError) as error:
        return [LoadProblem(str(path), f"cannot load: {error}")]
    out: list[AnyRule | LoadProblem] = []
    for rule in collection.rules:
        if rule.errors:
            out.append(LoadProblem(str(path), "; ".join(str(e) for e in rule.errors)))
        elif not rule_key(rule):
            out.append(LoadProblem(str(path), "rule has neither id nor name"))
        else:
            out.append(rule)
    return out


def load_rules(directories: Iterable[Path], progress: Callable[[int, int], None] | None = None) -> LoadedRules:
    """Load every rule file under ``directories``; problems are collected, never raised.
    ``progress(files_done, files_total)`` is called before the first file and after each."""
    loaded = LoadedRules()
    seen: dict[str, str] = {}
    paths = list(rule_files(directories))
    for done, path in enumerate(paths):
        if progress is not None:
            progress(done, len(paths))
        for rule in parse_rule_file(path, path.read_bytes()):
            if isinstance(rule, LoadProblem):
                loaded.problems.append(rule)
                continue
            key = rule_key(rule)
            if key in seen:
                loaded.problems.append(LoadProblem(str(path), f"duplicate rule id {key} (first in {seen[key]})"))
                continue
            seen[key] = str(path)
            loaded.rules.append(rule)
    if progress is not None:
        progress(len(paths), len(paths))
    _resolve_correlations(loaded)
    return loaded


def _resolve_correlations(loaded: LoadedRules) -> None:
    """Resolve each correlation on its own, so one dangling reference drops only its rule."""
    collection = SigmaCollection([r for r in loaded.rules if isinstance(r, SigmaRule)])
    by_key = {str(r.id): r for r in loaded.rules} | {r.name: r for r in loaded.rules if r.name}
    kept: list[AnyRule] = [r for r in loaded.rules if isinstance(r, SigmaRule)]
    pending = [r for r in loaded.rules if isinstance(r, SigmaCorrelationRule)]
    # correlations may refer to correlations: resolve in rounds until nothing changes
    while pending:
        progress = False
        for rule in list(pending):
            refs = [ref.reference for ref in rule.rules]
            missing = [ref for ref in refs if ref not in by_key]
            if missing:
                where = str(rule.source.path if rule.source else rule.id)
                loaded.problems.append(LoadProblem(where, f"correlation refers to unknown rules: {', '.join(missing)}"))
                pending.remove(rule)
                progress = True
                continue
            if all(by_key[ref] in kept for ref in refs):
                try:
                    rule.resolve_rule_references(collection)
                except SigmaError as error:
                    where = str(rule.source.path if rule.source else rule.id)
                    loaded.problems.append(LoadProblem(where, f"cannot resolve correlation: {error}"))
                else:
                    kept.append(rule)
                    collection.rules.append(rule)
                    collection.ids_to_rules[rule.id] = rule
                    if rule.name:
                        collection.names_to_rules[rule.name] = rule
                pending.remove(rule)
                progress = True
        if not progress:
            for rule in pending:
                where = str(rule.source.path if rule.source else rule.id)
                loaded.problems.append(LoadProblem(where, "correlation references form a cycle"))
            break
    loaded.rules = kept
