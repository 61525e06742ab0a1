"""Market-data sources. Each yields ticks to an ``emit(pair, mid, source)`` callback."""
