r"""pySigma's Lucene backend, adapted to our Elasticsearch/OpenSearch index template.

The same processing pipelines as for SQLite map Sigma fields onto ECS fields; then:

- every string value is **lower-cased** in the query, because the index template gives every
  string field a ``lowercase`` normalizer (see ``soc/store/search.py``): together they make
  Sigma's case-insensitive matching hold for equality, wildcards and ``*contains*`` alike
  (pySigma-backend-elasticsearch #107/#178). ``|cased`` values are lower-cased too -- the index
  keeps no case -- so they match case-insensitively (broader, never narrower); ``|re``
  regular expressions are likewise matched ignoring case against the lower-cased values,
  translated by :mod:`soc.detect.lucene_regex` into a Lucene regexp spelled in lower case
  (whole-value anchoring, escapes, shorthand classes; untranslatable constructs make the
  rule fail to compile for this store);
- field names of the catalogue's string fields become their ``lc`` multi-field
  (``user.name`` -> ``user.name.lc``, :func:`soc.store.search_mappings.match_field`): the
  fields themselves have ECS types that keep case (``keyword``, ``wildcard``,
  ``match_only_text``), the ``lc`` keyword has the lowercase normalizer this backend relies on;
  existence tests look at the field ECS indexes (:func:`~soc.store.search_mappings.exists_field`);
- *keywords* (full-text items) search ``message`` (its ``lc`` field) as ``*value*``, like the
  SQLite backend;
- a query is one DSL clause (``query_string``, ``lenient: false``) the store puts in its bool
  filter, next to the dataset and time-window filters. A regexp the engine refuses to
  determinize (more than 10,000 states, e.g. ``.*(gci|get-item).{1,64}-path.{1,64}``) fails the
  search with "Determinizing <regexp> would require more than 10000 effort" -- unless the
  query_string is *lenient*, which turns it into no hits without a word; query_string is lenient
  by default whenever the index's default field is ``*`` (the engine's default; ours set
  ``message.lc``), hence the explicit ``lenient: false``. Such a rule's runs then fail and rule
  health shows the error (:func:`soc.detect.lucene_regex.explain_engine_error` says what to do)
  instead of the rule silently never firing;
- a field name is escaped character by character wherever query_string would read syntax in it
  (``a"b`` -> ``a\"b``, ``x:y`` -> ``x\:y``): pySigma escapes only whitespace and ``*``.
"""

from __future__ import annotations

import re
from typing import Any

from sigma.backends.elasticsearch import LuceneBackend
from sigma.conditions import (
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionValueExpression,
)
from sigma.conversion.state import ConversionState
from sigma.types import SigmaRegularExpression, SigmaString, SpecialChars

from soc.detect.lucene_regex import translate
from soc.detect.sqlite_backend import KEYWORD_FIELD, _contains
from soc.store.search_mappings import exists_field, match_field

#: query_string's reserved characters (Elasticsearch/OpenSearch docs), and whitespace
_FIELD_SPECIAL = re.compile(r'[\s+\-=&|><!(){}\[\]^"~*?:\\/]')
#: where a rule's conversion state collects the ``regexp`` probes of its ``|re`` values
_PROBES = "soc_regexp_probes"


def _with_probes(query: dict[str, Any], probes: list[dict[str, Any]]) -> dict[str, Any]:
    """``query`` plus its regexps as optional ``regexp`` clauses that never change what matches.

    For the ``dsl-inplace`` dialect, whose query_string stays lenient (a shipper's index with
    default field ``*``). The engine builds every clause's automaton when it parses the query,
    so a regexp it cannot determinize fails the search (an error naming the regexp) rather than
    match nothing, as it does inside a lenient query_string. ``minimum_should_match: 0`` beside
    a required clause makes the probes optional; in the store's filter context nothing scores, so Lucene drops them before
    searching (the profile API shows the bare regexp): the cost is building each automaton a
    second time when the query is parsed (measured on 143 SigmaHQ regexes: about 12 -> 24 ms per
    single-regexp query on a loaded 2-core machine)."""
    if not probes:
        return query
    return {"bool": {"filter": [query], "should": probes, "minimum_should_match": 0}}


def _lucene_regex(r: SigmaRegularExpression, lowercase: bool) -> str:
    """``r`` as query_string's regexp (the text between the slashes) meaning what ``re.search`` means on SQLite
    (:mod:`soc.detect.lucene_regex`); untranslatable constructs fail the rule's compilation."""
    flags = "".join(SigmaRegularExpression.sigma_to_re_flag[flag] for flag in r.flags)
    return translate(str(r.regexp), flags=flags, lowercase=lowercase)  # re_expression adds the slashes


def _lower(value: SigmaString) -> SigmaString:
    result = SigmaString()
    result.s = tuple(part.lower() if isinstance(part, str) else part for part in value.s)
    return result


class SocSearchBackend(LuceneBackend):
    name = "SOC search-engine backend"
    field_escape_pattern = _FIELD_SPECIAL  # each match gets a backslash (field_escape) before it

    def escape_and_quote_field(self, field_name: str) -> str:
        return super().escape_and_quote_field(match_field(field_name))

    def _exists_field(self, cond: ConditionFieldEqualsValueExpression) -> str:
        return super().escape_and_quote_field(exists_field(cond.field))

    def convert_condition_field_eq_val_null(self, cond: ConditionFieldEqualsValueExpression,
                                            state: ConversionState) -> Any:
        return self.field_null_expression.format(field=self._exists_field(cond))

    def convert_condition_field_exists(self, cond: ConditionFieldEqualsValueExpression,
                                       state: ConversionState) -> Any:
        return self.field_exists_expression.format(field=self._exists_field(cond))

    def convert_condition_field_not_exists(self, cond: ConditionFieldEqualsValueExpression,
                                           state: ConversionState) -> Any:
        return self.field_not_exists_expression.format(field=self._exists_field(cond))

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> Any:
        # pySigma writes "not null" as _exists_ with the field as it is (neither mapped nor escaped)
        if LuceneBackend._is_field_null_condition(cond.args[0]):
            return self.field_exists_expression.format(field=self._exists_field(cond.args[0]))
        return super().convert_condition_not(cond, state)

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        return super().convert_value_str(_lower(s), state)

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> Any:
        # the ``lc`` field holds lower-cased values: the regex matches ignoring case
        return _lucene_regex(r, lowercase=True)

    def _probe_field(self, field_name: str) -> str:
        """The field a ``|re`` value's probe queries: the one its query_string term names, unescaped."""
        return match_field(field_name)

    def convert_condition_field_eq_val_re(self, cond: ConditionFieldEqualsValueExpression,
                                          state: ConversionState) -> Any:
        value = cond.value
        if not isinstance(value, SigmaRegularExpression):
            raise TypeError(f"expected a regular expression, got {type(value).__name__}")
        regex = self.convert_value_re(value, state)
        probes = state.processing_state.setdefault(_PROBES, [])  # type: ignore[attr-defined]
        probes.append({"regexp": {self._probe_field(cond.field): {"value": regex}}})
        return self.re_expression.format(field=self.escape_and_quote_field(cond.field), regex=regex,
                                         **self.get_flag_template(value))

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        plain = SigmaString()
        plain.s = cond.value.s
        cond.value = plain  # no case survives the normalizer: match it like any other value
        return self.convert_condition_field_eq_val_str(cond, state)

    def convert_condition_val_str(self, cond: ConditionValueExpression, state: ConversionState) -> Any:
        value = _contains(_lower(cond.value))
        return f"{match_field(KEYWORD_FIELD)}:" + super(LuceneBackend, self).convert_value_str(value, state)

    def convert_condition_val_num(self, cond: ConditionValueExpression, state: ConversionState) -> Any:
        return f"{match_field(KEYWORD_FIELD)}:*{cond.value}*"

    def finalize_query_default(self, rule: Any, query: str, index: int, state: ConversionState) -> Any:
        return {"query_string": {"query": query, "analyze_wildcard": True, "allow_leading_wildcard": True,
                                 "default_operator": "AND", "lenient": False}}

    @staticmethod
    def combine(queries: list[Any]) -> Any:
        if len(queries) == 1:
            return queries[0]
        return {"bool": {"should": queries, "minimum_should_match": 1}}



#: Lucene regular-expression syntax characters (and ``/``, which ends a regex in query_string)
_RE_SPECIAL = set('.?+*|{}[]()"\\#@&<>~/')
#: longest value spelled as a case-insensitive regex (``index.max_regex_length`` is 1,000)
_MAX_CI_VALUE = 200


def _ci_regex(value: SigmaString) -> str | None:
    """A Lucene regex matching ``value`` (Sigma wildcards included) ignoring case: each letter
    as the class of its case forms (``[aA]``); ``None`` when too long for the engine."""
    out: list[str] = []
    for part in value.s:
        if isinstance(part, SpecialChars):
            out.append(".*" if part == SpecialChars.WILDCARD_MULTI else ".")
            continue
        for ch in part:
            forms = sorted({v for v in (ch, ch.lower(), ch.upper()) if len(v) == 1})
            if len(forms) > 1:
                out.append("[" + "".join(forms) + "]")
            else:
                out.append("\\" + ch if ch in _RE_SPECIAL else ch)
    if len(value) > _MAX_CI_VALUE:
        return None
    return "".join(out)


class InPlaceSearchBackend(SocSearchBackend):
    """The dialect ``dsl-inplace``: rules over logs another shipper put in the cluster
    (Winlogbeat, Elastic Agent; :mod:`soc.store.search_sources`). Those indices have the
    shipper's mapping -- ``winlog.*`` and ``winlog.event_data.*`` as case-sensitive keywords,
    ``winlog.event_id`` and ``event.code`` as keywords -- and no ``lc`` multi-fields and no
    lowercase normalizer of ours. So field names stay as the pipelines map them (the
    ``windows`` pipeline gives Winlogbeat's own layout), and Sigma's case-insensitive string
    comparison is a regular expression that spells every letter in both cases
    (``Image|endswith: '\\net.exe'`` -> ``/.*\\\\[nN][eE][tT]\\.[eE][xX][eE]/``): it
    matches on any keyword mapping, at the price of a term-dictionary scan per value. A value
    longer than 200 characters is compared as spelled. ``|re`` values are translated exactly
    (:mod:`soc.detect.lucene_regex`; case-sensitive unless ``(?i)``/``|i``). Keyword searches look at ``message`` (analysed text in these indices)."""

    name = "SOC search-engine backend, in place"

    def escape_and_quote_field(self, field_name: str) -> str:
        return LuceneBackend.escape_and_quote_field(self, field_name)

    def _exists_field(self, cond: ConditionFieldEqualsValueExpression) -> str:
        return LuceneBackend.escape_and_quote_field(self, cond.field)

    def _probe_field(self, field_name: str) -> str:
        return field_name

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        regex = _ci_regex(s)
        return LuceneBackend.convert_value_str(self, s, state) if regex is None else f"/{regex}/"

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> Any:
        return _lucene_regex(r, lowercase=False)

    def finalize_query_default(self, rule: Any, query: str, index: int, state: ConversionState) -> Any:
        # a shipper's index may hold a field under a type the rule's values do not fit (a string
        # compared with a numeric field): lenient, such a comparison is simply false, as before;
        # the regexps are then probed apart (``_with_probes``) so that only they fail loudly
        query_string = super().finalize_query_default(rule, query, index, state)
        query_string["query_string"].pop("lenient")
        return _with_probes(query_string, state.processing_state.get(_PROBES, []))
