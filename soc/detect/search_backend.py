r"""pySigma's Lucene backend, adapted to our Elasticsearch/OpenSearch index template.

The same processing pipelines as for SQLite map Sigma fields onto ECS fields; then:

- every string value is **lower-cased** in the query, because the index template gives every
  string field a ``lowercase`` normalizer (see ``soc/store/search.py``): together they make
  Sigma's case-insensitive matching hold for equality, wildcards and ``*contains*`` alike
  (pySigma-backend-elasticsearch #107/#178). ``|cased`` values are lower-cased too -- the index
  keeps no case -- so they match case-insensitively (broader, never narrower); regular
  expressions run against lower-cased values, and because the normalizer lower-cases the
  pattern too, the classes ``\D \S \W`` are rewritten as ``[^\d] [^\s] [^\w]`` first
  (lower-cased, they would silently become their opposites);
- *keywords* (full-text items) search ``message`` as ``*value*``, like the SQLite backend;
- a query is one DSL clause (``query_string``) the store puts in its bool filter, next to the
  dataset and time-window filters;
- a field name is escaped character by character wherever query_string would read syntax in it
  (``a"b`` -> ``a\"b``, ``x:y`` -> ``x\:y``): pySigma escapes only whitespace and ``*``.
"""

from __future__ import annotations

import re
from typing import Any

from sigma.backends.elasticsearch import LuceneBackend
from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionValueExpression
from sigma.conversion.state import ConversionState
from sigma.types import SigmaRegularExpression, SigmaString

from soc.detect.sqlite_backend import KEYWORD_FIELD, _contains

#: query_string's reserved characters (Elasticsearch/OpenSearch docs), and whitespace
_FIELD_SPECIAL = re.compile(r'[\s+\-=&|><!(){}\[\]^"~*?:\\/]')
_NEGATED_CLASS = re.compile(r"(?<!\\)((?:\\\\)*)\\([DSW])")


def _case_proof(regex: str) -> str:
    """``\\D`` -> ``[^\\d]`` (and S, W): survives the index normalizer's lower-casing."""
    return _NEGATED_CLASS.sub(lambda m: f"{m.group(1)}[^\\{m.group(2).lower()}]", regex)


def _lower(value: SigmaString) -> SigmaString:
    result = SigmaString()
    result.s = tuple(part.lower() if isinstance(part, str) else part for part in value.s)
    return result


class SocSearchBackend(LuceneBackend):
    name = "SOC search-engine backend"
    field_escape_pattern = _FIELD_SPECIAL  # each match gets a backslash (field_escape) before it

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        return super().convert_value_str(_lower(s), state)

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> Any:
        return _case_proof(super().convert_value_re(r, state))

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        plain = SigmaString()
        plain.s = cond.value.s
        cond.value = plain  # no case survives the normalizer: match it like any other value
        return self.convert_condition_field_eq_val_str(cond, state)

    def convert_condition_val_str(self, cond: ConditionValueExpression, state: ConversionState) -> Any:
        value = _contains(_lower(cond.value))
        return f"{KEYWORD_FIELD}:" + super(LuceneBackend, self).convert_value_str(value, state)

    def convert_condition_val_num(self, cond: ConditionValueExpression, state: ConversionState) -> Any:
        return f"{KEYWORD_FIELD}:*{cond.value}*"

    def finalize_query_default(self, rule: Any, query: str, index: int, state: ConversionState) -> Any:
        return {"query_string": {"query": query, "analyze_wildcard": True, "allow_leading_wildcard": True,
                                 "default_operator": "AND"}}

    @staticmethod
    def combine(queries: list[Any]) -> Any:
        if len(queries) == 1:
            return queries[0]
        return {"bool": {"should": queries, "minimum_should_match": 1}}

