"""Operations endpoints: ``/metrics`` (Prometheus), ``/readyz``.

Metrics are read from the runtime's own counters when Prometheus scrapes, by a
custom collector: nothing is instrumented on the hot broadcast path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel

if TYPE_CHECKING:
    from ratehubd.runtime import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class RuntimeCollector(Collector):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        rt = self.rt
        st = rt.status()
        hub, eng = st["websocketHub"], st["rateEngine"]
        conns = GaugeMetricFamily(
            "ratehub_ws_connections", "Open WebSocket connections.", labels=["client_type"]
        )
        for ctype, n in sorted(hub["byClientType"].items()):
            conns.add_metric([ctype], n)
        yield conns
        yield _gauge(
            "ratehub_ws_stores", "Store channels with at least one client.", len(hub["byStore"])
        )
        for name, key, doc in (
            ("messages", "messages", "Messages queued to clients."),
            ("frames", "frames", "Frames written to sockets."),
            ("conflated", "conflated", "Rate values superseded within a batch window."),
            ("dropped", "dropped", "Rate frames dropped for slow consumers."),
            ("slow_consumer_closes", "slowConsumerCloses", "Connections closed as slow consumers."),
            ("rate_limited", "rateLimited", "Inbound messages refused by the rate limit."),
        ):
            yield _counter(f"ratehub_ws_{name}", doc, hub[key])
        terminals = GaugeMetricFamily(
            "ratehub_terminals",
            "WebSocket terminals by what they confirmed (ack): current, confirming, stale, "
            "unconfirmed (never acknowledges).",
            labels=["state"],
        )
        counts = {"current": 0, "confirming": 0, "stale": 0, "unconfirmed": 0}
        now = rt.clock.time()
        for session in list(rt.hub.sessions.values()):
            counts[rt.hub.terminal_state(session, now)] += 1
        for state, n in counts.items():
            terminals.add_metric([state], n)
        yield terminals
        lat = GaugeMetricFamily(
            "ratehub_fanout_latency_ms",
            "Fan-out latency from the first change in a window to its writes (recent).",
            labels=["quantile"],
        )
        for q in ("p50", "p99"):
            value = hub["fanoutLatencyMs"].get(q)
            if value is not None:
                lat.add_metric([q.replace("p", "0.")], float(value))
        yield lat
        yield _counter(
            "ratehub_rate_frames",
            "Rate frames built (one per group per window).",
            rt.hub.stats.frames,
        )
        yield _counter(
            "ratehub_overrides_set", "Overrides set since start.", rt.service.overrides_set
        )
        yield _gauge("ratehub_overrides_active", "Active overrides.", eng["activeOverrides"])
        yield _counter(
            "ratehub_locks_created", "Rate locks created since start.", eng["locksCreated"]
        )
        yield _gauge("ratehub_locks_active", "Active rate locks.", eng["activeLocks"])
        yield _gauge(
            "ratehub_breaches_active", "Threshold breaches in progress.", len(eng["breaches"])
        )
        yield _counter("ratehub_ticks_accepted", "Market ticks accepted.", eng["ticksAccepted"])
        yield _counter("ratehub_ticks_rejected", "Market ticks rejected.", eng["ticksRejected"])
        age = GaugeMetricFamily(
            "ratehub_market_age_seconds", "Age of each pair's market data.", labels=["pair"]
        )
        stale = GaugeMetricFamily(
            "ratehub_market_stale", "1 when a pair's market data is stale.", labels=["pair"]
        )
        for pair, m in sorted(eng["marketData"].items()):
            age.add_metric([pair], float(m["ageSeconds"]))
            stale.add_metric([pair], 1.0 if m["stale"] else 0.0)
        yield age
        yield stale
        writes = st["integration"]["writes"]
        yield _counter(
            "ratehub_db_write_batches", "Database transactions (group commits).", writes["batches"]
        )
        yield _counter("ratehub_db_write_ops", "Database writes acknowledged.", writes["ops"])
        yield from _backplane(st["integration"].get("backplane", {}))
        yield from rt.extra_metrics()


def _backplane(bp: dict[str, Any]) -> Iterator[Metric]:
    """A fleet node's Redis backplane and event sequencing (nothing for one node)."""
    if bp.get("kind") != "redis":
        return
    yield _gauge(
        "ratehub_backplane_connected",
        "1 while Redis subscription and publisher are up.",
        1.0 if bp["connected"] else 0.0,
    )
    for name, key, doc in (
        ("published", "published", "Messages this node published."),
        ("sent", "sent", "Messages delivered to Redis."),
        ("received", "received", "Messages received from other nodes."),
        ("dropped", "dropped", "Messages dropped from a full send queue."),
        ("reconnects", "reconnects", "Subscriptions restored after a Redis outage."),
        ("events_reordered", "reordered", "Events held for a lower seq."),
        ("events_filled", "filledFromDatabase", "Events read from the database log."),
        ("event_gap_seqs", "gapSeqs", "Event seqs no longer in the log when needed."),
    ):
        yield _counter(f"ratehub_backplane_{name}", doc, bp[key])
    yield _gauge("ratehub_backplane_queued", "Messages waiting for Redis.", bp["queued"])
    yield _gauge("ratehub_event_seq_delivered", "Highest event seq delivered.", bp["deliveredSeq"])
    if bp["lagMs"] is not None:
        yield _gauge(
            "ratehub_backplane_lag_ms", "Age of the last event from another node.", bp["lagMs"]
        )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=float(value))


class Readiness(BaseModel):
    """``GET /readyz`` (no key needed)."""

    ready: bool
    problems: list[str]


def add_ops_routes(app: FastAPI, rt: Runtime) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(rt))

    @app.get(
        "/metrics",
        tags=["system"],
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format (no key needed)",
                "content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE)

    @app.get(
        "/readyz",
        tags=["system"],
        responses={
            200: {"description": "Ready", "model": Readiness},
            503: {"description": "Not ready; `problems` says why", "model": Readiness},
        },
    )
    async def readyz() -> JSONResponse:
        """200 while serving (database open, market data fresh); 503 with the reasons."""
        problems = await rt.readiness_problems()
        body: dict[str, Any] = {"ready": not problems, "problems": problems}
        return JSONResponse(body, status_code=200 if not problems else 503)
