"""What the parsers need from the data catalogue (:mod:`soc.catalog`, read from
``ingest/datasets.yml`` and ``ingest/fields.yml``): syslog program -> ``event.dataset``, the
known dataset names, and which fields are numeric.

A program is looked up by its full tag in lower case (``sshd(pam_unix)``), then by the part
before ``(`` or ``/`` (``postfix/smtpd`` -> ``postfix``), or the last path component
(``/usr/sbin/cron`` -> ``cron``); unknown programs give :data:`DEFAULT_DATASET`.
"""

from __future__ import annotations

from functools import cache

from soc.catalog import default_catalog

DEFAULT_DATASET = "linux.syslog"
_LOOKUP_CACHE: dict[str, str] = {}


def dataset_for_program(program: str | None) -> str:
    """The dataset of syslog ``program`` (any case)."""
    if not program:
        return DEFAULT_DATASET
    hit = _LOOKUP_CACHE.get(program)
    if hit is not None:
        return hit
    mapping = default_catalog().program_datasets
    name = program.lower()
    dataset = mapping.get(name)
    if dataset is None:
        base = name.rsplit("/", 1)[-1] if name.startswith("/") else name.split("(", 1)[0].split("/", 1)[0]
        dataset = mapping.get(base, DEFAULT_DATASET)
    if len(_LOOKUP_CACHE) < 4096:
        _LOOKUP_CACHE[program] = dataset
    return dataset


@cache
def known_datasets() -> frozenset[str]:
    """Every dataset name in the catalogue."""
    return frozenset(default_catalog().datasets)


@cache
def numeric_event_data() -> frozenset[str]:
    """EventData names the catalogue types as numbers (``winlog.event_data.LogonType: long``)."""
    prefix = "winlog.event_data."
    return frozenset(name[len(prefix):] for name in default_catalog().numeric_fields if name.startswith(prefix))
