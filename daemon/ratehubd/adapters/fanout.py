"""Choose the fan-out: in-process for one node, Redis (and a FleetNode) for a fleet.

The Redis driver is the ``fleet`` extra: it is imported only when ``backplane.url``
is set, so a single node runs without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ratehubd.config import Config
from ratehubd.engine.engine import RateEngine
from ratehubd.errors import ConfigError
from ratehubd.hub.backplane import (
    Backplane,
    EventMessage,
    MemoryBackplane,
    QuotesMessage,
    apply,
)
from ratehubd.hub.hub import Hub
from ratehubd.store.repository import Store

if TYPE_CHECKING:
    from ratehubd.adapters.fleet import FleetNode


def make_fanout(
    cfg: Config, hub: Hub, engine: RateEngine, store: Store
) -> tuple[Backplane, FleetNode | None]:
    """The service's fan-out, and the FleetNode to start (None for one node)."""
    if not cfg.backplane.url:
        memory = MemoryBackplane()
        memory.subscribe(lambda msg: apply(hub, msg))
        return memory, None
    try:
        from ratehubd.adapters.fleet import FleetNode, default_node_id
        from ratehubd.adapters.redis_backplane import RedisBackplane
    except ImportError as exc:
        raise ConfigError(
            f"backplane.url is set but the Redis driver is missing ({exc}); install the "
            "fleet extra: pip install 'ratehub[fleet]'"
        ) from None
    bp = cfg.backplane
    redis = RedisBackplane(
        bp.url,
        bp.channel,
        bp.node_id or default_node_id(),
        queue_limit=bp.queue_messages,
        shared=(EventMessage, QuotesMessage),
    )
    node = FleetNode(
        hub, engine, store, redis, wait_s=bp.reorder_wait_ms / 1000, poll_s=bp.poll_interval_s
    )
    return node, node
