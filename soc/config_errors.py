"""Strict settings: every mistake in ``soc.yml`` or a ``SOC_...`` variable is an error that says
where it is, in one line.

* :func:`read_settings_file` reads ``soc.yml`` (or the file ``SOC_CONFIG`` names, which must
  exist) keeping the line of every mapping key and list item, so that later errors can point at
  ``soc.yml:LINE``; a YAML syntax error is reported with its line and column.
* :func:`unknown_keys` finds keys that are no setting, at any depth, and suggests the closest
  valid key at that level (:func:`difflib.get_close_matches`).
* :func:`environment_settings` maps each ``SOC_...`` variable to the setting it sets and reports
  the ones that set none (with a suggestion), except reserved names (:mod:`soc.config` lists them).
* :func:`explain_validation_error` turns pydantic's errors into one line each, naming the file and
  line the value came from, or the environment variable.

Nothing here knows the settings model: :mod:`soc.config` passes it in. Everything that goes wrong
is a :class:`Problem`; :class:`ConfigError` carries them to the command line, which prints them
without a traceback and exits 2 (``soc --debug`` shows the traceback).
"""

from __future__ import annotations

import collections.abc
import difflib
import json
import re
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from soc.errors import SocError
from soc.secrets import is_secret_name, mask_urls_in

#: the prefix of every settings variable and the separator of nested settings
ENV_PREFIX = "SOC_"
ENV_DELIMITER = "__"
#: how close a name must be to be suggested (difflib ratio)
_CUTOFF = 0.6

Loc = tuple[Any, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration: ``where`` (``soc.yml:3``, ``environment variable
    SOC_...``, a file) and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def as_dict(self) -> dict[str, str]:
        return {"where": self.where, "message": self.message}


class ConfigError(SocError):
    """The configuration cannot be used. ``problems``: one per line, each naming its place.
    ``unreadable``: the settings file itself cannot be read (missing, not UTF-8, not YAML, not a
    mapping), as opposed to settings that are wrong."""

    def __init__(self, problems: str | Problem | Sequence[str | Problem], *, unreadable: bool = False) -> None:
        items = [problems] if isinstance(problems, str | Problem) else list(problems)
        self.problems = [p if isinstance(p, Problem) else Problem("", p) for p in items]
        self.unreadable = unreadable
        super().__init__("\n".join(str(p) for p in self.problems))


# -- the settings file, with the line of every key --------------------------------------------------
class _PositionLoader(yaml.SafeLoader):
    """A safe loader that records the line of each mapping key and each list item it builds."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.key_lines: dict[int, dict[Any, int]] = {}
        self.item_lines: dict[int, list[int]] = {}


def _construct_map(loader: _PositionLoader, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
    data: dict[Any, Any] = {}
    yield data
    data.update(loader.construct_mapping(node))  # merges (<<) are flattened into node.value here
    lines = loader.key_lines.setdefault(id(data), {})
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)  # already built: taken from the loader's cache
        if isinstance(key, collections.abc.Hashable):
            lines[key] = key_node.start_mark.line + 1


def _construct_seq(loader: _PositionLoader, node: yaml.SequenceNode) -> Iterator[list[Any]]:
    data: list[Any] = []
    yield data
    data.extend(loader.construct_sequence(node))
    loader.item_lines[id(data)] = [child.start_mark.line + 1 for child in node.value]


_PositionLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_PositionLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


@dataclass
class SettingsFile:
    """A settings file as read: its data and where each key and list item is (1-based lines)."""

    path: Path
    name: str  # as shown in messages: the path as given
    data: dict[str, Any]
    key_lines: dict[int, dict[Any, int]] = field(default_factory=dict, repr=False)
    item_lines: dict[int, list[int]] = field(default_factory=dict, repr=False)

    def has(self, loc: Loc) -> bool:
        """Whether the file sets the first part of ``loc`` (the section or setting)."""
        return bool(loc) and loc[0] in self.data

    def contains(self, loc: Loc) -> bool:
        """Whether the file has every key and list item of ``loc``."""
        node: Any = self.data
        for part in loc:
            if isinstance(node, dict) and _hashable(part) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return False
        return True

    def line(self, loc: Loc) -> int | None:
        """The line of the deepest key or list item of ``loc`` the file has; ``None`` when it has
        not even the first."""
        node: Any = self.data
        line = None
        for part in loc:
            if isinstance(node, dict) and _hashable(part) and part in node:
                line = self.key_lines.get(id(node), {}).get(part, line)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                items = self.item_lines.get(id(node), [])
                line = items[part] if part < len(items) else line
                node = node[part]
            else:
                break
        return line

    def where(self, loc: Loc) -> str:
        """``soc.yml:LINE`` for ``loc`` (``soc.yml`` alone when the line is unknown)."""
        line = self.line(loc)
        return f"{self.name}:{line}" if line else self.name


def _hashable(value: Any) -> bool:
    return isinstance(value, collections.abc.Hashable)


def read_settings_file(environ: Mapping[str, str], default: str = "soc.yml") -> SettingsFile | None:
    """The file ``SOC_CONFIG`` names, else ``default`` in the working directory; ``None`` when
    ``SOC_CONFIG`` is not set and there is no ``default``. Raises :class:`ConfigError`
    (``unreadable``) when ``SOC_CONFIG`` names no file, or the file is not UTF-8, not YAML or not a
    mapping."""
    named = environ.get("SOC_CONFIG")
    name = named or default
    path = Path(name).expanduser()
    if not path.is_file():
        if not named:
            return None
        what = "is not a file" if path.exists() else "does not exist"
        raise ConfigError(Problem("SOC_CONFIG", f"the settings file {name} {what}"), unreadable=True)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(Problem(name, f"not UTF-8 text (byte {error.start})"), unreadable=True) from error
    except OSError as error:
        raise ConfigError(Problem(name, f"cannot read it ({error.strerror})"), unreadable=True) from error
    loader = _PositionLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        raise ConfigError(_yaml_problem(name, error), unreadable=True) from error
    except yaml.YAMLError as error:
        raise ConfigError(Problem(name, f"not valid YAML: {error}"), unreadable=True) from error
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        raise ConfigError(Problem(f"{name}:{line}", "expected a mapping of settings (name: value) at the top level, "
                                  f"found a {type(data).__name__}"), unreadable=True)
    return SettingsFile(path, name, data, loader.key_lines, loader.item_lines)


def _yaml_problem(name: str, error: yaml.MarkedYAMLError) -> Problem:
    mark = error.problem_mark or error.context_mark
    where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
    what = error.problem or error.context or "syntax error"
    if error.context and error.problem:
        context_line = f" at line {error.context_mark.line + 1}" if error.context_mark else ""
        what = f"{error.problem} ({error.context}{context_line})"
    return Problem(where, f"not valid YAML: {what}")


# -- walking the settings model -------------------------------------------------------------------
def _unwrap(annotation: Any, value: Any = None) -> Any:
    """The annotation without ``Annotated`` and ``X | None``; of a real union, the member that
    fits ``value`` (a model for a mapping, a list for a list)."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            annotation = next((m for m in members if _fits(m, value)), members[0] if len(members) == 1 else Any)
            continue
        return annotation


def _model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _fits(annotation: Any, value: Any) -> bool:
    annotation = _unwrap(annotation)
    origin = get_origin(annotation) or annotation
    if value is None:
        return _model(annotation) is not None
    if isinstance(value, dict):
        return _model(annotation) is not None or origin in (dict, collections.abc.Mapping)
    if isinstance(value, list):
        return origin in (list, tuple, set, frozenset, collections.abc.Sequence)
    return False


def _field_names(model: type[BaseModel]) -> dict[str, Any]:
    """Setting name -> annotation for each field of ``model`` (aliases count as names too)."""
    names: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        names[name] = info.annotation
        if isinstance(info.alias, str):
            names[info.alias] = info.annotation
    return names


def _accepts_extra(model: type[BaseModel]) -> bool:
    return model.model_config.get("extra") == "allow"


def dotted(loc: Loc) -> str:
    """``reporting.recipients[0].token`` from a location tuple."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class UnknownKey:
    """A key that is no setting: where it is, and the valid names at that level."""

    loc: Loc
    valid: tuple[str, ...]

    def suggestion(self) -> str | None:
        """The closest valid name, if one is close enough."""
        matches = difflib.get_close_matches(str(self.loc[-1]), self.valid, n=1, cutoff=_CUTOFF)
        return matches[0] if matches else None

    def message(self) -> str:
        name = dotted(self.loc)
        close = self.suggestion()
        if close is not None:
            return f"unknown setting '{name}' — did you mean '{dotted(self.loc[:-1] + (close,))}'?"
        section = f"'{dotted(self.loc[:-1])}'" if len(self.loc) > 1 else "the top level"
        return f"unknown setting '{name}' — the settings of {section} are: {', '.join(sorted(self.valid))}"


def unknown_keys(annotation: Any, value: Any, loc: Loc = ()) -> Iterator[UnknownKey]:
    """Every key under ``value`` that ``annotation`` (a pydantic model, or a list/dict/union of
    them) does not know, at any depth. Keys of free-form mappings (``dict[str, ...]``) are
    anybody's; the values under them are still checked when they are models."""
    annotation = _unwrap(annotation, value)
    model = _model(annotation)
    if model is not None:
        if not isinstance(value, dict) or _accepts_extra(model):
            return
        fields = _field_names(model)
        for key, sub in value.items():
            if key in fields:
                yield from unknown_keys(fields[key], sub, (*loc, key))
            else:
                yield UnknownKey((*loc, key), tuple(fields))
        return
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (list, tuple, set, frozenset, collections.abc.Sequence) and isinstance(value, list) and args:
        for index, item in enumerate(value):
            yield from unknown_keys(args[0], item, (*loc, index))
    elif origin in (dict, collections.abc.Mapping) and isinstance(value, dict) and len(args) == 2:
        for key, sub in value.items():
            yield from unknown_keys(args[1], sub, (*loc, key))


def leaf_names(model: type[BaseModel], loc: Loc = ()) -> Iterator[Loc]:
    """Every setting and section of ``model`` as a location (for suggestions)."""
    for name, annotation in _field_names(model).items():
        yield (*loc, name)
        sub = _model(_unwrap(annotation, {}))
        if sub is not None:
            yield from leaf_names(sub, (*loc, name))


def secret_env_names(data: Any) -> set[str]:
    """The variable names that ``..._env`` settings in ``data`` name (``password_env: X``)."""
    names: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
                names.add(value)
            else:
                names |= secret_env_names(value)
    elif isinstance(data, list):
        for item in data:
            names |= secret_env_names(item)
    return names


# -- environment variables --------------------------------------------------------------------------
def env_name(loc: Loc) -> str:
    """``SOC_DETECTION__INTERVAL_SECONDS`` for ``("detection", "interval_seconds")``."""
    return ENV_PREFIX + ENV_DELIMITER.join(str(p) for p in loc).upper()


@dataclass
class EnvironmentSettings:
    """The ``SOC_...`` variables that set a setting (location -> variable), and the problems of
    the ones that set none."""

    paths: dict[Loc, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    sections: dict[Loc, dict[str, Any]] = field(default_factory=dict)  # sections given as JSON
    all_paths: dict[Loc, str] = field(default_factory=dict)  # every SOC_ variable that is not reserved

    def variable_for(self, loc: Loc) -> str | None:
        """The variable that set ``loc`` or a section holding it (a section given as JSON only
        when the JSON has the setting: the rest of the section comes from the file)."""
        for size in range(len(loc), 0, -1):
            if loc[:size] not in self.paths:
                continue
            section = self.sections.get(loc[:size])
            if section is None or size == len(loc) or loc[size] in section:
                return self.paths[loc[:size]]
        for path, name in self.all_paths.items():  # a nested variable under the setting, even one that is wrong
            if loc and path[:len(loc)] == loc:
                return name
        return None


def environment_settings(model: type[BaseModel], environ: Mapping[str, str], *, reserved_names: Iterable[str] = (),
                         reserved_prefixes: Iterable[str] = (), allowed: Iterable[str] = ()) -> EnvironmentSettings:
    """Map each ``SOC_...`` variable of ``environ`` to the setting of ``model`` it sets (names are
    case-insensitive, ``__`` separates nested settings). A variable that sets none is a problem,
    unless its name is in ``reserved_names`` or ``allowed`` (variables that ``..._env`` settings
    name) or starts with one of ``reserved_prefixes``. A section given as JSON
    (``SOC_DETECTION='{"interval_seconds": 5}'``) is checked for unknown keys too."""
    reserved = {n.upper() for n in reserved_names}
    prefixes = tuple(p.upper() for p in reserved_prefixes)
    allowed_names = set(allowed)
    found = EnvironmentSettings()
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in reserved or upper.startswith(prefixes) or name in allowed_names:
            continue
        parts = tuple(upper[len(ENV_PREFIX):].lower().split(ENV_DELIMITER))
        found.all_paths[parts] = name
        problem = _env_problem(model, parts)
        if problem is not None:
            found.problems.append(Problem(f"environment variable {name}", problem))
            continue
        found.paths[parts] = name
        found.problems.extend(_env_json_problems(model, parts, name, environ[name], found.sections))
    return found


def _env_problem(model: type[BaseModel], parts: Loc) -> str | None:
    """Why the variable for ``parts`` sets no setting of ``model`` (with a suggestion), or ``None``."""
    annotation: Any = model
    for depth, part in enumerate(parts):
        annotation = _unwrap(annotation, {})
        current = _model(annotation)
        if current is not None:
            fields = _field_names(current)
            if part in fields:
                annotation = fields[part]
                continue
            guess = _env_guess(model, parts, depth, tuple(fields))
            return "matches no setting" + (f" — did you mean {guess}?" if guess else "")
        if get_origin(annotation) in (dict, collections.abc.Mapping):
            args = get_args(annotation)
            annotation = args[1] if len(args) == 2 else Any
            continue
        as_json = " as JSON" if get_origin(annotation) in (list, tuple, set, frozenset) else ""
        return f"matches no setting ('{dotted(parts[:depth])}' has no sub-settings: set {env_name(parts[:depth])}{as_json})"
    return None


def _env_guess(model: type[BaseModel], parts: Loc, depth: int, valid: tuple[str, ...]) -> str | None:
    """The variable meant: the closest name at the level that failed (the following names
    corrected too where they can be), else the closest of all setting names."""
    close = difflib.get_close_matches(parts[depth], valid, n=1, cutoff=_CUTOFF)
    if close:
        fixed = (*parts[:depth], close[0])
        annotation: Any = model
        for part in fixed:
            sub = _model(_unwrap(annotation, {}))
            annotation = _field_names(sub).get(part) if sub is not None else None
        for part in parts[depth + 1:]:
            sub = _model(_unwrap(annotation, {}))
            names = tuple(_field_names(sub)) if sub is not None else ()
            match = difflib.get_close_matches(part, names, n=1, cutoff=_CUTOFF)
            fixed = (*fixed, match[0] if match else part)
            annotation = _field_names(sub).get(fixed[-1]) if sub is not None else None
        return env_name(fixed)
    everything = {ENV_DELIMITER.join(loc): loc for loc in leaf_names(model)}
    match = difflib.get_close_matches(ENV_DELIMITER.join(parts), list(everything), n=1, cutoff=_CUTOFF)
    return env_name(everything[match[0]]) if match else None


def _env_json_problems(model: type[BaseModel], parts: Loc, name: str, value: str,
                       sections: dict[Loc, dict[str, Any]]) -> list[Problem]:
    annotation: Any = model
    for part in parts:
        sub = _model(_unwrap(annotation, {}))
        if sub is None:
            return []
        annotation = _field_names(sub)[part]
    if _model(_unwrap(annotation, {})) is None and get_origin(_unwrap(annotation, [])) is not list:
        return []
    try:
        data = json.loads(value)
    except ValueError:
        return []  # pydantic says what is wrong with the value
    if isinstance(data, dict):
        sections[parts] = data
    return [Problem(f"environment variable {name}", unknown.message())
            for unknown in unknown_keys(annotation, data, parts)]


# -- pydantic's errors, with their place ----------------------------------------------------------
def _shown_input(loc: Loc, value: Any, message: str) -> str:
    """`` (got 'soon')`` for a short scalar input that is no secret; else nothing."""
    if any(isinstance(p, str) and is_secret_name(p) for p in loc):
        return ""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 80):
        shown = mask_urls_in(repr(value))
        return "" if shown in message else f" (got {shown})"
    return ""


def explain_validation_error(error: ValidationError, file: SettingsFile | None, env: EnvironmentSettings,
                             overrides: Iterable[str] = ()) -> list[Problem]:
    """One problem per pydantic error, naming where the value came from: an option of the command
    (``overrides``), an environment variable, or ``soc.yml:LINE``."""
    given = set(overrides)
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        message = item["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        message += _shown_input(loc, item.get("input"), message)
        text = f"{dotted(loc)}: {message}" if loc else message
        variable = env.variable_for(loc)
        if loc and loc[0] in given:
            where = "command line"
        elif variable is not None:
            where = f"environment variable {variable}"
        elif file is not None and file.has(loc):
            where = file.where(loc)
        else:
            where = "settings"
        problems.append(Problem(where, text))
    return problems


_SETTINGS_ERROR = re.compile(r'field "(?P<field>[^"]+)" from source "(?P<source>[^"]+)"')


def explain_settings_error(error: Exception, env: EnvironmentSettings) -> Problem:
    """pydantic-settings' error for a variable it cannot parse (a list or section that is not
    JSON), naming the variable."""
    match = _SETTINGS_ERROR.search(str(error))
    if match and match["source"].startswith("Env"):
        field_name = match["field"]
        variable = env.variable_for((field_name,)) or env_name((field_name,))
        return Problem(f"environment variable {variable}",
                       f"not valid JSON for {field_name} (lists and sections are given as JSON, e.g. "
                       '["/srv/rules"] or {"interval_seconds": 30})')
    return Problem("settings", str(error))


__all__ = ["ENV_DELIMITER", "ENV_PREFIX", "ConfigError", "EnvironmentSettings", "Problem", "SettingsFile",
           "UnknownKey", "dotted", "env_name", "environment_settings", "explain_settings_error",
           "explain_validation_error", "leaf_names", "read_settings_file", "secret_env_names", "unknown_keys"]
