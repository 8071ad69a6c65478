"""Defaults of ``ingest`` (a module of their own so the client can name them cheaply).

Body sizes are chosen by the sizer (``sizing.py``) between its first size (1 MiB, the
fastest when calls are not limited) and these limits; ``benchmarks/bench_defaults.py``
measures the defaults against fixed sizes and hand-written loops under call limits.
"""

from vecml_async._config import HARD_MAX_REQUEST_BYTES

#: The largest body ``ingest`` sends by default: the hard cap (200 MB minus a margin).
DEFAULT_MAX_BYTES = HARD_MAX_REQUEST_BYTES
#: Rows per request at most; the byte target decides first unless rows are tiny.
DEFAULT_MAX_ROWS = 1_000_000
#: The memory one ingest may take, in bytes. The encoded rows it holds (the bodies being
#: sent and the rows read ahead) stay under half of it (:data:`HELD_SHARE`); the rest is
#: room for what the process takes around them: ids and row offsets, and the allocator's
#: slack (freed buffers are not all given back at once: measured, peak RSS grows by
#: 1.2-1.7x the encoded bytes held). One body stays under a quarter of it.
DEFAULT_MAX_MEMORY = 256 * 1024 * 1024
#: Share of ``max_memory`` the encoded rows held may take.
HELD_SHARE = 0.5
#: Share of ``max_memory`` one body may take, adaptive or ``batch_bytes`` (so that one body
#: is in flight while the next one fills, within the rows held).
BODY_SHARE = 0.25
#: Requests in flight at most.
DEFAULT_CONCURRENCY = 4
#: Batches failing in a row after which an ingest stops.
DEFAULT_MAX_CONSECUTIVE_FAILURES = 8
