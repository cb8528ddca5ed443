"""National reports: Circular 20/2017 forms (Mẫu 03/04/05), monitoring summaries, STIX 2.1 and
MISP exports, built from stored snapshots, signed (CMS) and delivered through an outbox.

One module, one job:

* :mod:`~soc.export.profiles`  versioned profiles by recipient (YAML in ``profiles/``)
* :mod:`~soc.export.documents` the documents as pydantic models; :mod:`~soc.export.schema` their JSON Schemas
* :mod:`~soc.export.snapshot`  capture the inputs of a report in the store (collection ``report_snapshots``)
* :mod:`~soc.export.incident_report` Mẫu 03/04 from an incident snapshot (required-field check)
* :mod:`~soc.export.summary`   Mẫu 05 and the daily/weekly/monthly monitoring summary
* :mod:`~soc.export.render_json`, :mod:`~soc.export.render_docx`, :mod:`~soc.export.render_stix`,
  :mod:`~soc.export.render_misp` renderers (pure functions of the document/snapshot: byte-identical)
* :mod:`~soc.export.sign`     detached CMS/PKCS#7 signatures and their verification
* :mod:`~soc.export.outbox`, :mod:`~soc.export.channels` delivery with retries and receipts
* :mod:`~soc.export.reports`  the façade the CLI, playbooks and the scheduler use
* :mod:`~soc.export.schedule` periodic summaries with APScheduler; :mod:`~soc.export.due` deadlines
* :mod:`~soc.export.audit_checkpoints` the audit checkpoints the summaries carry, read back and
  their signatures checked (``soc audit verify``)

See ``docs/reporting.md``.
"""

__all__: list[str] = []
