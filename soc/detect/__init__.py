"""Detection: Sigma rules loaded (:mod:`.rules`), compiled per store (:mod:`.compiler`), run over
store windows (:mod:`.engine`, :mod:`.correlate`) on a schedule (:mod:`.scheduler`), with
exceptions as data (:mod:`.suppressions`). See ``docs/detection.md``. Import the modules; the
package itself exports nothing."""

__all__: list[str] = []
