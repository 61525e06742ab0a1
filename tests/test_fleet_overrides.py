"""One truth for every override across a fleet: versions and compare-and-set are decided
in the database's transaction, so two nodes can never both accept the same
``expectedVersion``, and simultaneous writes to one key end on the database's winner on
every node, announced to every client at once (not found later by the 2 s poll).

Real PostgreSQL and Redis; the database poll is made slow (30 s) so that only the write
path and the backplane can be what the tests see working.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect

from ratehubd.runtime import Runtime
from tests.conftest import Fleet, timeout
from tests.test_fleet import api, ws_url
from tests.test_ws_hub import recv_until

SLOW_POLL = {"poll_interval_s": 30.0}


def body(buy: float, sell: float, **extra: Any) -> dict[str, Any]:
    return {"currencyPair": "USD/CAD", "buyRate": buy, "sellRate": sell, "storeId": "s1", **extra}


def version_of(rate: dict[str, Any]) -> int:
    return int(rate["provenance"]["override"]["version"])


async def two_nodes(fleet: Fleet) -> tuple[Runtime, Runtime]:
    return await fleet("a", backplane=SLOW_POLL), await fleet("b", backplane=SLOW_POLL)


def held(rt: Runtime) -> tuple[str, int] | None:
    """The override this node's engine holds at USD/CAD, s1: (id, version)."""
    for ov in rt.engine.overrides.all():
        if str(ov.pair) == "USD/CAD" and ov.store_id == "s1":
            return ov.id, ov.version
    return None


async def sees_winner(ws: Any, override_id: str, version: int, buy: float) -> None:
    got = await recv_until(
        ws, lambda m: m["type"] == "rate_override_set" and m["data"]["id"] == override_id, 2
    )
    assert got["data"]["version"] == version

    def shows(m: dict[str, Any]) -> bool:
        rates = m["data"]["rates"] if m["type"] == "rate_update" else []
        return any(x["currencyPair"] == "USD/CAD" and x["buyRate"] == buy for x in rates)

    await recv_until(ws, shows, 2)


async def test_the_same_expected_version_on_two_nodes_at_once_is_accepted_once(
    fleet: Fleet,
) -> None:
    a, b = await two_nodes(fleet)
    for trial in range(5):
        current = trial  # each trial makes exactly one write
        ra, rb = await asyncio.gather(
            api(a, "POST", "/api/rates/set", body(1.37, 1.33, expectedVersion=current)),
            api(b, "POST", "/api/rates/set", body(1.38, 1.34, expectedVersion=current)),
        )
        codes = sorted([ra.status_code, rb.status_code])
        assert codes == [200, 409], (trial, ra.text, rb.text)
        loser = ra if ra.status_code == 409 else rb
        assert loser.json()["details"]["currentVersion"] == current + 1, loser.text


async def test_the_same_expected_version_sent_to_one_node_then_another_is_refused_by_the_second(
    fleet: Fleet,
) -> None:
    a, b = await two_nodes(fleet)
    first = await api(a, "POST", "/api/rates/set", body(1.37, 1.33, expectedVersion=0))
    assert first.status_code == 200, first.text
    # B has not heard of A's write through any poll: only the database can refuse this.
    second = await api(b, "POST", "/api/rates/set", body(1.38, 1.34, expectedVersion=0))
    assert second.status_code == 409, second.text
    assert "version 1, not 0" in second.json()["error"]
    third = await api(b, "POST", "/api/rates/set", body(1.38, 1.34, expectedVersion=1))
    assert third.status_code == 200, third.text
    assert version_of(third.json()["data"]) == 2


async def test_simultaneous_writes_on_two_nodes_end_on_the_databases_winner_everywhere(
    fleet: Fleet,
) -> None:
    a, b = await two_nodes(fleet)
    window = 0.05
    for trial in range(4):
        async with (
            connect(ws_url(a, clientType="store_os", storeId="s1")) as wa,
            connect(ws_url(b, clientType="store_os", storeId="s1")) as wb,
        ):
            for ws in (wa, wb):
                await recv_until(
                    ws, lambda m: m["type"] == "rate_update" and m["data"].get("snapshot")
                )
            buy_a, buy_b = round(1.37 + trial / 100, 4), round(1.38 + trial / 100, 4)
            ra, rb = await asyncio.gather(
                api(a, "POST", "/api/rates/set", body(buy_a, round(buy_a - 0.04, 4))),
                api(b, "POST", "/api/rates/set", body(buy_b, round(buy_b - 0.04, 4))),
            )
            answered = time.monotonic()
            assert ra.status_code == rb.status_code == 200, (ra.text, rb.text)
            winner = await asyncio.to_thread(a.store.active_override, "USD/CAD", "s1")
            assert winner is not None
            final_buy = float(winner.buy or 0)
            answers = {version_of(ra.json()["data"]), version_of(rb.json()["data"])}
            # Two writes, two versions of one sequence; the last one committed is final.
            assert (
                max(answers) == winner.version and len(answers) == 2 or answers == {winner.version}
            ), (answers, winner.version)
            for r, own in ((ra, buy_a), (rb, buy_b)):
                assert r.json()["data"]["buyRate"] in (own, final_buy), r.text
            for ws in (wa, wb):
                # Both events, in seq order, then the winner's rate: through the backplane,
                # long before the database poll (30 s) could have found anything.
                await sees_winner(ws, winner.id, winner.version, final_buy)
            assert time.monotonic() - answered < timeout(1.0) + window
            for rt in (a, b):
                assert held(rt) == (winner.id, winner.version)


@pytest.mark.parametrize("clear_on", ["a", "b"])
async def test_a_clear_then_a_set_on_another_node_numbers_on_from_the_database(
    fleet: Fleet, clear_on: str
) -> None:
    a, b = await two_nodes(fleet)
    nodes = {"a": a, "b": b}
    assert (await api(a, "POST", "/api/rates/set", body(1.37, 1.33))).status_code == 200
    key = {"currencyPair": "USD/CAD", "storeId": "s1"}
    deadline = time.monotonic() + timeout(2)
    while held(nodes[clear_on]) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)  # the backplane brings A's write into B's engine
    cleared = await api(nodes[clear_on], "POST", "/api/rates/clear", key)
    assert cleared.status_code == 200, cleared.text
    # The clear is version 2 of the key; a compare-and-set against it works on either node.
    again = await api(b, "POST", "/api/rates/set", body(1.38, 1.34, expectedVersion=2))
    assert again.status_code == 200, again.text
    assert version_of(again.json()["data"]) == 3
