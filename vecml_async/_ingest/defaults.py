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
#: Bytes of encoded rows one ingest holds at most: the bodies being sent and the rows read
#: ahead. The adaptive size never goes past a quarter of it.
DEFAULT_MAX_MEMORY = 256 * 1024 * 1024
#: Requests in flight at most.
DEFAULT_CONCURRENCY = 4
#: Batches failing in a row after which an ingest stops.
DEFAULT_MAX_CONSECUTIVE_FAILURES = 8
