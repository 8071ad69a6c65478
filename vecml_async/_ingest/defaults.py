"""Defaults of ``ingest`` (a module of their own so the client can name them cheaply)."""

#: Default body size of one request. ``benchmarks/bench_batch_size.py`` measures the sweep
#: that chose it: against the emulator (which parses every float) 1 MiB bodies at
#: concurrency 4 were fastest (about 1.2x 2 MiB and 1.5x 4 MiB); much bigger bodies only
#: add latency and memory, and the 200 MB cap is a ceiling, not a target.
DEFAULT_MAX_BYTES = 1024 * 1024
#: Rows per request at most; with typical vectors the byte limit decides first.
DEFAULT_MAX_ROWS = 20_000
#: Requests in flight.
DEFAULT_CONCURRENCY = 4
#: Batches failing in a row after which an ingest stops.
DEFAULT_MAX_CONSECUTIVE_FAILURES = 8
