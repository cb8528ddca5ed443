"""Templated arguments and conditions: sandboxed Jinja2.

* A string that is exactly one ``{{ expression }}`` keeps the expression's type (a list of
  alerts stays a list, a number a number), like Tracecat's ``${{ }}``; any other string with
  ``{{ }}`` renders to text. Dicts and lists are rendered value by value.
* A condition (``if:``) is a bare expression (``steps.incident.output.created``); ``{{ }}``
  around it is accepted too.
* The sandbox (:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`) refuses attribute access
  to Python internals and mutation of the context, so a playbook is data, not code.
* A missing name or key is *undefined* (chainable: ``steps.x.output.y`` on a skipped step
  is undefined, not an error); it is falsy in conditions, ``None`` as a whole argument and
  empty inside text. ``| default(...)`` works as usual.

The context is ``trigger``, ``inputs``, ``steps`` (``steps.<id>.output``, ``.status``,
``.error``), ``run`` (``id``, ``playbook``, ``dry_run``, ``actor``) and ``now`` (UTC ISO).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from soc.errors import SocError

_WHOLE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)


class TemplateError(SocError):
    """A template could not be compiled or evaluated; the message quotes it."""


def _tojson(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=False,
                                        keep_trailing_newline=True)
    env.filters["tojson"] = _tojson
    env.filters["first_of"] = lambda v: (v[0] if isinstance(v, (list, tuple)) and v else v)
    return env


def _is_whole(text: str) -> str | None:
    match = _WHOLE.match(text)
    if match and "{{" not in match.group(1) and "}}" not in match.group(1):
        return match.group(1)
    return None


@lru_cache(maxsize=4096)
def _expression(text: str):  # type: ignore[no-untyped-def]
    return environment().compile_expression(text, undefined_to_none=False)


@lru_cache(maxsize=4096)
def _template(text: str):  # type: ignore[no-untyped-def]
    return environment().from_string(text)


def check_template(value: Any, *, expression: bool = False) -> None:
    """Compile every template in ``value`` (syntax check at load time)."""
    if isinstance(value, dict):
        for item in value.values():
            check_template(item)
    elif isinstance(value, list):
        for item in value:
            check_template(item)
    elif isinstance(value, str):
        try:
            if expression:
                inner = _is_whole(value)
                _expression(inner if inner is not None else value)
            elif (inner := _is_whole(value)) is not None:
                _expression(inner)
            elif "{{" in value or "{%" in value:
                _template(value)
        except TemplateSyntaxError as error:
            raise TemplateError(f"template {value!r}: {error.message}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, ChainableUndefined):
        return None
    return value


def render(value: Any, context: dict[str, Any]) -> Any:
    """Render every template in ``value`` against ``context`` (see the module docstring)."""
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
        return value
    try:
        inner = _is_whole(value)
        if inner is not None:
            return _plain(_expression(inner)(**context))
        return _template(value).render(**context)
    except (SecurityError, UndefinedError, TemplateSyntaxError) as error:
        raise TemplateError(f"template {value!r}: {error}") from None
    except Exception as error:  # a filter or a test raised: say which template
        raise TemplateError(f"template {value!r}: {type(error).__name__}: {error}") from None


def condition(text: str, context: dict[str, Any]) -> bool:
    """Evaluate an ``if:`` expression to a boolean."""
    inner = _is_whole(text)
    try:
        result = _expression(inner if inner is not None else text)(**context)
    except (SecurityError, UndefinedError, TemplateSyntaxError) as error:
        raise TemplateError(f"condition {text!r}: {error}") from None
    except Exception as error:
        raise TemplateError(f"condition {text!r}: {type(error).__name__}: {error}") from None
    if isinstance(result, ChainableUndefined):
        return False
    return bool(result)


def names_used(text: str) -> set[str]:
    """Top-level names a template refers to (for documentation and checks)."""
    inner = _is_whole(text)
    source = "{{ " + inner + " }}" if inner is not None else text
    try:
        ast = environment().parse(source)
    except TemplateSyntaxError:
        return set()
    return {n.name for n in ast.find_all(nodes.Name)}
