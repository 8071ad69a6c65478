"""Defaults of ``ingest`` (a module of their own so the client can name them cheaply)."""

#: Default body size of one request. ``benchmarks/bench_batch_size.py`` measures the sweep
#: that chose it: 2 to 4 MiB bodies at concurrency 4 were fastest against a server that
#: parses every float; much bigger bodies only add latency and memory.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
#: Rows per request at most; with typical vectors the byte limit decides first.
DEFAULT_MAX_ROWS = 20_000
#: Requests in flight.
DEFAULT_CONCURRENCY = 4
