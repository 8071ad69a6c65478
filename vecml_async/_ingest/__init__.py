"""The ingestion pipeline behind :meth:`AsyncVecML.ingest`.

It imports nothing itself, so that a module of the pipeline can be imported alone.
"""
