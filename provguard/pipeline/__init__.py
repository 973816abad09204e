"""The filtering pipeline behind ``provguard filter``: ``scan -> score -> decide -> act``.

Modules (each one job):

- :mod:`.items` — :class:`SourceItem`, one addressable thing in a source (file, row, tar member).
- :mod:`.sources` — folder trees, Parquet, Hugging Face datasets, webdataset tars -> items.
- :mod:`.config` — :class:`RunConfig` (what a run is) and its fingerprint (resume refuses a different one).
- :mod:`.detector_set` — builds the detector cascade from a config (reusing :mod:`provguard.detectors`).
- :mod:`.decode` — pixel decoding in worker processes, prefetched while the model runs.
- :mod:`.scoring` — one shard of items -> manifest rows (scores and evidence, no decisions).
- :mod:`.shards` — the shard plan, atomic shard files and completion markers (resume after kill -9).
- :mod:`.manifest` — the Parquet manifest: columns, reading, writing.
- :mod:`.decide` — policy -> verdicts, kept/rejected lists, from stored scores (no model).
- :mod:`.actions` — report / copy-kept / move-rejected with a journal, and restore.
- :mod:`.rundir` — the run directory's layout and atomic JSON files.
- :mod:`.summary`, :mod:`.report` — the text summary and the offline HTML report.
- :mod:`.engines` — local (process pool) and Ray Data engines that run the score stage.
- :mod:`.run` — the orchestration used by the CLI and by library callers.
"""
from __future__ import annotations

from provguard.lazy import lazy_exports

# exported lazily (PEP 562): decoding workers import :mod:`.decode` without the detectors, torch or scipy
_EXPORTS = {"RunConfig": "provguard.pipeline.config", "FilterResult": "provguard.pipeline.run",
            "run_filter": "provguard.pipeline.run"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
