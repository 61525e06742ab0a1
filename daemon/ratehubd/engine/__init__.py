"""The rate engine: pure and synchronous. Nothing here reads a clock or does I/O;
time comes in as ``now`` (a timezone-aware UTC ``datetime``)."""
