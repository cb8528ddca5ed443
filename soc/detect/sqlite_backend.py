"""pySigma's SQLite backend, adapted to our events table.

Three small changes, nothing else:

- a query is only the ``WHERE`` predicate; the store adds the table, the dataset filter and the
  time window;
- *keywords* (value-only Sigma items, full-text search) match anywhere in ``message``, case-
  insensitively (``LIKE '%value%'``), which is how SigmaHQ's Linux and web rules are meant;
- field names are the flat ECS names the processing pipelines produced; the store exposes each
  as a column of that exact name, so they are only quoted.
"""

from __future__ import annotations

from typing import Any

from sigma.backends.sqlite import sqliteBackend
from sigma.conditions import ConditionValueExpression
from sigma.conversion.state import ConversionState
from sigma.types import SigmaString, SpecialChars

#: the column keyword (full-text) items search
KEYWORD_FIELD = "message"


def _contains(value: SigmaString) -> SigmaString:
    """``value`` with a leading and trailing ``*`` unless it already has them."""
    parts = list(value.s)
    if not parts or parts[0] is not SpecialChars.WILDCARD_MULTI:
        parts.insert(0, SpecialChars.WILDCARD_MULTI)
    if parts[-1] is not SpecialChars.WILDCARD_MULTI:
        parts.append(SpecialChars.WILDCARD_MULTI)
    result = SigmaString()
    result.s = tuple(parts)
    return result


class SocSQLiteBackend(sqliteBackend):
    name = "SOC SQLite backend"

    def finalize_query_default(self, rule: Any, query: str, index: int, state: ConversionState) -> Any:
        return query

    def escape_and_quote_field(self, field: str) -> str:
        return "`" + field.replace("`", "``") + "`"

    def convert_condition_val_str(self, cond: ConditionValueExpression, state: ConversionState) -> Any:
        pattern = self.convert_value_str(_contains(cond.value), state, no_quote=True)
        return f"{KEYWORD_FIELD} LIKE '{pattern}' ESCAPE '\\'"

    def convert_condition_val_num(self, cond: ConditionValueExpression, state: ConversionState) -> Any:
        return f"{KEYWORD_FIELD} LIKE '%{cond.value}%'"
