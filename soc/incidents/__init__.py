"""Incidents: the model (:mod:`.model`), default severity and national type (:mod:`.types`) and
the service that opens, groups and moves them through their lifecycle (:mod:`.service`, put
together from :mod:`.records`, :mod:`.lifecycle`, :mod:`.membership`, :mod:`.grouping` and
:mod:`.regroup`). Import the modules; the package itself exports nothing."""

__all__: list[str] = []
