"""Per-pair aggregation of several market-data sources. Pure; time is passed in.

Theory of operation
-------------------
Sources hand in :class:`~ratehubd.engine.cross.Quote` s (``SourceBook.offer``). For every
configured pair and every source configured for it there is a *route*: the way that source
builds the pair. In this order of preference: the source's own quote of the pair or of its
inverse; a cross inside the source through a pivot (ECB: ``USD/CAD = 1/(EUR/USD) x
EUR/CAD``; OXR: ``EUR/CAD = 1/(USD/EUR) x USD/CAD``); or the source's ``X/Y`` times this
book's own aggregated ``Y/Z`` (Coinbase: ``BTC/CAD = BTC/USD x USD/CAD``). Routes are
resolved afresh on every quote, so a currency that disappears simply ends its routes.

Each new quote re-evaluates the routes it feeds, and each value is checked: positive and
finite, inside the pair's sanity band, and, for dealing routes, within the pair's
``max_jump`` of the source's own last accepted value (or, for a source without a fresh one,
of the last value any source of the pair got accepted with). The sanity band is
``[sanity_min, sanity_max]`` from the pair policy, unless a fresh reference mid exists (the
median of the pair's reference routes, BoC and ECB): then it is that mid
``+/- reference_band``. A rejected value is counted against its source (``rejected``) and
leaves its route unhealthy until the source sends a value that passes. A quote equal to or
older than the source's last one (a daily rate polled again) is not a new tick.

A route is *healthy* when its last value was accepted and every leg is fresh: younger than
the budget of its source or kind (reference: two business days, weekends not counted;
intraday: two hours; exchange: thirty seconds). A leg taken from the book is fresh while
that pair is healthy. Per pair, mode ``priority`` uses the first healthy dealing route in
the configured order (failover and failback), mode ``median`` the median of all of them
(and the medians of their bids and asks when every one has a book).

Circuit breaker, per pair (``PairState``)::

    closed --(a dealing route reaches N consecutive rejections
              and no other dealing route is healthy)--> open
    open   --(a dealing route has M consecutive accepted values)--> closed
    open   --(operator reset)--> closed

A bad secondary source therefore never freezes a pair whose primary is fine. While open,
``mid`` returns the last published value marked ``frozen`` and ``refusal`` says why locks
must be refused. A reset also forgets the jump references, so a genuine move larger than
``max_jump`` (otherwise rejected forever) is taken as the new level.

Events: ``BreakerOpened`` / ``BreakerClosed`` and ``StalenessBegan`` / ``StalenessEnded``
(per pair with ``source=None``, and per route) fire once per transition, never per tick;
``MarketMoved`` fires when a pair's published value (mid, sides or sources) changes;
``QuoteRejected`` is one per rejected value, for logs and counters, not for broadcast.
"""

from ratehubd.engine.sources.book import SourceBook
from ratehubd.engine.sources.config import (
    DEFAULT_BUDGETS,
    BookConfig,
    Budget,
    Mode,
    PairRouting,
    weekday_seconds,
)
from ratehubd.engine.sources.events import (
    AggregatedQuote,
    BreakerClosed,
    BreakerOpened,
    MarketMoved,
    PairHealth,
    PairStatus,
    QuoteRejected,
    RouteHealth,
    RouteStatus,
    SourceEvent,
    StalenessBegan,
    StalenessEnded,
)

__all__ = [
    "DEFAULT_BUDGETS",
    "AggregatedQuote",
    "BookConfig",
    "BreakerClosed",
    "BreakerOpened",
    "Budget",
    "MarketMoved",
    "Mode",
    "PairHealth",
    "PairRouting",
    "PairStatus",
    "QuoteRejected",
    "RouteHealth",
    "RouteStatus",
    "SourceBook",
    "SourceEvent",
    "StalenessBegan",
    "StalenessEnded",
    "weekday_seconds",
]
