"""Market-data sources.

Each source is a :class:`~ratehubd.adapters.feeds.base.Source`: ``name``, ``kind`` and an
``async fetch() -> list[Quote]`` (one poll; SourceError on failure). ``base.poll`` runs one
on an interval and hands each poll's quotes to a callback (for the runtime:
``SourceBook.offer(quotes, clock.now())``). Providers: ``boc``, ``ecb``, ``frankfurter``,
``oxr``, ``coinbase``, ``kraken`` (HTTP, each a pure parser plus a thin httpx fetcher),
``push`` (a validated pushed price) and ``simulated``. ``settings`` is the ``[sources]``
configuration section, ``registry.build_sources`` builds the enabled providers from it.
"""
