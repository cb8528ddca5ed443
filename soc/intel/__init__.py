"""Threat intelligence (issue #13, the indicator side): indicators from feeds into the store,
matched against stored events, hunted back over history.

* :mod:`.indicators` -- types, normal forms and ids of indicator values;
* :mod:`.patterns` -- STIX 2.1 patterns reduced to the values they match (or why not);
* :mod:`.book` -- :class:`IndicatorBook`, the ``intel_indicators`` collection on either store:
  dedup across feeds, expiry, revocation;
* :mod:`.feeds` -- plain lists, CSV, MISP feeds and STIX objects as items;
* :mod:`.taxii_client` -- polling a TAXII 2.1 collection with ``taxii2-client`` from a cursor;
* :mod:`.polling` -- :class:`FeedPoller`, the configured feeds with per-feed status;
* :mod:`.handlist` -- the playbooks' ``threat_intel.yml`` loaded as the feed ``hand-list``;
* :mod:`.matcher` -- :class:`Matcher`, the in-memory matcher (exact values and networks);
* :mod:`.matching` -- :class:`IntelMatching`, the scheduled cycle, retro-hunt and sightings;
* :mod:`.sightings` -- queued sightings sent back to TAXII feeds;
* :mod:`.schedule` -- the jobs of ``soc run``.

The TAXII 2.1 *server* lives elsewhere (``soc/web/taxii/``).
"""

from soc.intel.book import INDICATORS, IndicatorBook, IntelError, Item, is_live
from soc.intel.handlist import HAND_LIST, load_hand_list
from soc.intel.indicators import (
    TYPES,
    IndicatorError,
    Observable,
    guess_type,
    indicator_id,
    normalize,
)
from soc.intel.matcher import FIELDS, Hit, Matcher
from soc.intel.matching import INTEL_RULE_ID, SIGHTINGS, IntelMatching
from soc.intel.patterns import Parsed, parse_pattern
from soc.intel.polling import FEEDS, FeedPoller
from soc.intel.sightings import send_sightings

__all__ = [
    "FEEDS",
    "FIELDS",
    "HAND_LIST",
    "INDICATORS",
    "INTEL_RULE_ID",
    "SIGHTINGS",
    "TYPES",
    "FeedPoller",
    "Hit",
    "IndicatorBook",
    "IndicatorError",
    "IntelError",
    "IntelMatching",
    "Item",
    "Matcher",
    "Observable",
    "Parsed",
    "guess_type",
    "indicator_id",
    "is_live",
    "load_hand_list",
    "normalize",
    "parse_pattern",
    "send_sightings",
]
