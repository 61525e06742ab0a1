"""The sans-I/O hub: resume after a reconnect, the slow-consumer policy and the inbound
rate limit. Never a silent gap: a client either gets what it missed or is told it did not."""

from __future__ import annotations

import json
from typing import Any

from ratehubd.hub.hub import Hub, LoggedEvent
from ratehubd.hub.session import (
    CLOSE_RATE_LIMITED,
    CLOSE_SLOW_CONSUMER,
    DASHBOARD,
    STORE_OS,
    Session,
)
from tests.hub_fakes import (
    EURCAD,
    T0,
    USDCAD,
    FakeRates,
    drain,
    kind,
    make_hub,
    payload,
    rates_of,
    send,
)

WINDOW = 0.05


def publish(hub: Hub, n: int, store_id: str | None = "store123") -> list[int]:
    return [
        hub.publish_event(
            "rate_override_set", {"currencyPair": "USD/CAD", "n": i}, store_id, T0
        ).seq
        for i in range(n)
    ]


def events(msgs: list[dict[str, Any]]) -> list[int]:
    return [m["seq"] for m in msgs if kind(m) == "rate_override_set"]


def snapshot_of(msgs: list[dict[str, Any]]) -> dict[str, Any]:
    [snap] = [m for m in msgs if kind(m) == "rate_update" and payload(m).get("snapshot")]
    return payload(snap)


# -- resume ---------------------------------------------------------------------------------


def test_reconnect_with_last_seq_replays_what_was_missed() -> None:
    hub = make_hub()
    publish(hub, 2)
    publish(hub, 2, "store999")  # seq 3, 4: another store's
    publish(hub, 2)  # seq 5, 6
    s = hub.open(1, STORE_OS, "store123", "admin", T0, last_seq=1, last_epoch="epoch-1")
    msgs = drain(hub, s)
    assert kind(msgs[0]) == "welcome"
    assert (msgs[0]["seq"], msgs[0]["epoch"]) == (1, "epoch-1")  # the client's position
    assert events(msgs) == [2, 5, 6]
    snap = snapshot_of(msgs)
    assert snap["recovered"] is True
    assert (snap["missedEvents"], snap["fromSeq"]) == (3, 1)
    assert kind(msgs[-1]) == "rate_update" and msgs[-1]["seq"] == 6
    assert s.last_seq == 6


def test_resume_message_mid_session() -> None:
    hub = make_hub()
    s = hub.open(1, DASHBOARD, "store123", "admin", T0)
    publish(hub, 3)
    drain(hub, s)
    send(hub, s, "resume", {"lastSeq": 1, "epoch": "epoch-1"})
    msgs = drain(hub, s)
    assert events(msgs) == [2, 3]
    assert snapshot_of(msgs)["recovered"] is True


def test_resume_at_the_head_replays_nothing() -> None:
    hub = make_hub()
    publish(hub, 3)
    s = hub.open(1, STORE_OS, "store123", "admin", T0, last_seq=3)
    msgs = drain(hub, s)
    assert events(msgs) == []
    assert snapshot_of(msgs)["missedEvents"] == 0


def test_not_recovered_when_the_log_no_longer_reaches_back() -> None:
    hub = make_hub(log_size=3)
    publish(hub, 6)  # retains 4, 5, 6
    ok = hub.open(1, STORE_OS, "store123", "admin", T0, last_seq=3)
    assert events(drain(hub, ok)) == [4, 5, 6]
    s = hub.open(2, STORE_OS, "store123", "admin", T0, last_seq=2)
    msgs = drain(hub, s)
    assert events(msgs) == []  # no partial replay
    snap = snapshot_of(msgs)
    assert snap["recovered"] is False
    assert snap["gap"] == {"fromSeq": 3, "toSeq": 6, "reason": "no longer retained"}
    assert sorted(rates_of(msgs[-1])) == ["BTC/CAD", "EUR/CAD", "USD/CAD"]  # a full table


class History:
    """The adapter's side of ``fetch_history``: the requests, answered by the test."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, int, int]] = []

    def __call__(self, sid: int, first: int, last: int) -> None:
        self.asked.append((sid, first, last))


def logged(seqs: range) -> list[LoggedEvent]:
    return [
        LoggedEvent(n, "store123", "rate_override_set", {"currencyPair": "USD/CAD"}, 0)
        for n in seqs
    ]


def test_a_resume_from_before_the_memory_log_is_served_from_the_database_log() -> None:
    history = History()
    hub = make_hub(log_size=3, fetch_history=history)
    publish(hub, 6)  # memory retains 4, 5, 6
    s = hub.open(1, STORE_OS, "store123", "admin", T0, last_seq=1)
    assert history.asked == [(1, 2, 3)]
    publish(hub, 1)  # seq 7 while the database is read: held back, then replayed in order
    assert [kind(m) for m in drain(hub, s)] == ["welcome"]
    hub.resume_history(1, logged(range(2, 4)), T0)
    assert history.asked[-1] == (1, 4, 4)  # seq 4 left the memory log meanwhile
    hub.resume_history(1, logged(range(4, 5)), T0)
    msgs = drain(hub, s)
    assert events(msgs) == [2, 3, 4, 5, 6, 7]
    snap = snapshot_of(msgs)
    assert snap["recovered"] is True and snap["missedEvents"] == 6


def test_a_session_waiting_for_its_history_is_written_no_rate_frame_before_it() -> None:
    rates = FakeRates()
    hub = make_hub(rates, log_size=3, fetch_history=History())
    publish(hub, 6)
    s = hub.open(1, STORE_OS, "store123", "admin", T0, last_seq=1)
    drain(hub, s)
    written: list[Any] = []
    s.write = lambda frame: written.append(frame) or True  # a socket that always drains
    rates.set(USDCAD, 1.40, 1.36)
    hub.mark_rates([USDCAD])
    hub.flush(T0 + WINDOW)
    assert written == [] and s.last_seq == 1  # nothing ahead of the replay, position kept
    hub.resume_history(1, logged(range(2, 4)), T0 + WINDOW)
    sent = [json.loads(f.text) for f in written] + drain(hub, s)
    assert events(sent) == [2, 3, 4, 5, 6]
    assert snapshot_of(sent)["recovered"] is True


def test_a_resume_into_events_pruned_from_the_database_is_a_gap() -> None:
    history = History()
    hub = make_hub(log_size=3, fetch_history=history)
    publish(hub, 6)
    s = hub.open(1, STORE_OS, "store123", "admin", T0, last_seq=1)
    hub.resume_history(1, logged(range(3, 4)), T0)  # seq 2 was pruned
    msgs = drain(hub, s)
    assert events(msgs) == []
    assert snapshot_of(msgs)["gap"] == {"fromSeq": 2, "toSeq": 6, "reason": "no longer retained"}


def test_a_resume_message_mid_session_reads_the_database_log_too() -> None:
    history = History()
    hub = make_hub(log_size=3, fetch_history=history)
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    publish(hub, 6)
    drain(hub, s)
    send(hub, s, "resume", {"lastSeq": 0})
    assert history.asked == [(1, 1, 3)]
    hub.resume_history(1, logged(range(1, 4)), T0)
    assert events(drain(hub, s)) == [1, 2, 3, 4, 5, 6]


def test_not_recovered_when_the_epoch_differs() -> None:
    hub = make_hub(epoch="epoch-2")
    publish(hub, 3)
    s = hub.open(1, STORE_OS, "store123", "admin", T0, last_seq=2, last_epoch="epoch-1")
    msgs = drain(hub, s)
    assert msgs[0]["epoch"] == "epoch-1"  # the welcome does not move the position
    assert events(msgs) == []
    snap = snapshot_of(msgs)
    assert snap["recovered"] is False
    assert snap["gap"] == {"fromSeq": 3, "toSeq": 3, "reason": "epoch changed"}
    assert (msgs[-1]["epoch"], msgs[-1]["seq"]) == ("epoch-2", 3)


def test_not_recovered_when_the_client_is_ahead() -> None:
    hub = make_hub()
    publish(hub, 2)
    s = hub.open(1, STORE_OS, "store123", "admin", T0, last_seq=9)
    snap = snapshot_of(drain(hub, s))
    assert snap["recovered"] is False
    assert snap["gap"]["reason"] == "ahead of this hub (seq 2)"
    assert s.last_seq == 2  # the snapshot was written: the position is the hub's again


def test_retention_survives_a_restart() -> None:
    first = make_hub()
    publish(first, 4)
    kept = list(first.log)
    second = make_hub(first_seq=5)
    second.restore_log(kept, floor=0)
    s = second.open(1, STORE_OS, "store123", "admin", T0, last_seq=2)
    msgs = drain(second, s)
    assert events(msgs) == [3, 4]
    assert snapshot_of(msgs)["recovered"] is True
    trimmed = make_hub(first_seq=5)
    trimmed.restore_log(kept[2:], floor=2)
    assert (
        snapshot_of(drain(trimmed, trimmed.open(1, STORE_OS, "store123", "a", T0, last_seq=1)))[
            "recovered"
        ]
        is False
    )
    ev = LoggedEvent(5, "store123", "rate_lock_created", {}, 0)
    trimmed.restore_log([ev], floor=2)
    assert trimmed.log[-1] is ev


# -- slow consumers -------------------------------------------------------------------------


def _stalled(queue: int = 8) -> tuple[Hub, FakeRates, Session, Session]:
    rates = FakeRates()
    hub = make_hub(rates, queue_frames=queue)
    stalled = hub.open(1, STORE_OS, "store123", "admin", T0)
    healthy = hub.open(2, STORE_OS, "store123", "admin", T0)
    drain(hub, stalled)
    drain(hub, healthy)
    return hub, rates, stalled, healthy


def test_slow_consumer_loses_superseded_rates_first_then_gets_a_snapshot() -> None:
    hub, rates, stalled, healthy = _stalled()
    got: list[dict[str, Any]] = []
    t = T0
    for i in range(9):
        t += WINDOW
        rates.set(USDCAD, 1.40 + i / 100, 1.30)
        hub.mark_rates([USDCAD])
        hub.flush(t)
        got += drain(hub, healthy)
    assert len(got) == 9  # the healthy client lost nothing and waited for nothing
    assert healthy.closing is None and not healthy.needs_snapshot
    # The stalled one filled up with 8 rate frames; the 9th dropped them all.
    assert stalled.closing is None
    assert hub.stats.dropped == 8
    assert len(stalled.outbox) <= 8
    assert list(stalled.outbox) == []
    # Even if nothing changes any more, a snapshot of the latest values follows.
    hub.flush(t + WINDOW)
    [snap] = drain(hub, stalled)
    assert payload(snap)["snapshot"] is True
    assert rates_of(snap)["USD/CAD"] == rates.table[USDCAD] | {"storeId": "store123"}
    assert not stalled.needs_snapshot
    hub.flush(t + 2 * WINDOW)
    assert drain(hub, stalled) == []  # once


def test_slow_consumer_is_closed_with_its_resume_position() -> None:
    hub, rates, stalled, healthy = _stalled()
    publish(hub, 2)
    drain(hub, stalled)  # it read up to seq 2, then stalls
    assert stalled.last_seq == 2
    seen = drain(hub, healthy)
    hub.mark_rates([USDCAD])
    hub.flush(T0 + WINDOW)
    seen += drain(hub, healthy)
    publish(hub, 7)  # seq 3..9: events are never dropped, so it overflows
    seen += drain(hub, healthy)
    hub.mark_rates([EURCAD])
    hub.flush(T0 + 2 * WINDOW)
    seen += drain(hub, healthy)
    assert stalled.closing is None  # so far only its rate frame was dropped
    publish(hub, 2)  # seq 10, 11
    seen += drain(hub, healthy)
    assert stalled.closing is not None
    code, reason = stalled.closing
    assert code == CLOSE_SLOW_CONSUMER == 4008
    assert reason == "slow consumer; resume with lastSeq=2"
    assert len(reason.encode()) <= 123  # fits a close frame
    assert list(stalled.outbox) == []
    assert stalled in hub.take_ready()  # the adapter closes it
    assert (hub.stats.slow_closes, hub.stats.dropped) == (1, 1)
    # Others are unaffected.
    assert healthy.closing is None
    assert events(seen) == list(range(1, 12))
    assert [kind(m) for m in seen].count("rate_update") == 2
    # Nothing more is queued for the closing session.
    publish(hub, 1)  # seq 12
    assert list(stalled.outbox) == []
    # Reconnecting with the position from the reason misses nothing.
    last = int(reason.rpartition("=")[2])
    hub.close(stalled.id)
    again = hub.open(3, STORE_OS, "store123", "admin", T0, last_seq=last)
    msgs = drain(hub, again)
    assert events(msgs) == list(range(3, 13))
    assert snapshot_of(msgs)["recovered"] is True


def test_a_client_that_missed_more_than_a_queue_can_still_resume() -> None:
    hub = make_hub(queue_frames=4)
    publish(hub, 50)
    s = hub.open(1, STORE_OS, "store123", "admin", T0, last_seq=0)
    assert s.closing is None
    msgs = drain(hub, s)
    assert events(msgs) == list(range(1, 51))
    assert snapshot_of(msgs)["recovered"] is True
    # The bound applies again from then on.
    publish(hub, 5)
    assert s.closing is not None and s.closing[0] == CLOSE_SLOW_CONSUMER
    assert s.closing[1] == "slow consumer; resume with lastSeq=50"


def test_a_resumed_session_closed_before_its_replay_is_written_keeps_its_position() -> None:
    hub = make_hub(queue_frames=6)
    publish(hub, 4)
    s = hub.open(1, STORE_OS, "store123", "admin", T0, last_seq=1)  # welcome, 2, 3, 4, snapshot
    assert s.closing is None
    publish(hub, 3)  # overflows before anything was written
    assert s.closing is not None
    assert s.closing[1] == "slow consumer; resume with lastSeq=1"


def test_control_replies_are_kept_when_rates_are_dropped() -> None:
    hub, _, stalled, _ = _stalled(queue=4)
    for i in range(4):
        hub.mark_rates([USDCAD])
        hub.flush(T0 + (i + 1) * WINDOW)
    send(hub, stalled, "ping", {}, now=T0 + 1)
    assert [kind(m) for m in drain(hub, stalled)] == ["pong"]


# -- inbound rate limit ---------------------------------------------------------------------


def test_flooding_gets_an_error_then_a_close() -> None:
    hub = make_hub(messages_per_second=2, message_burst=3)
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    bystander = hub.open(2, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    drain(hub, bystander)
    for _ in range(3):
        send(hub, s, "ping", {})
    assert [m["type"] for m in drain(hub, s)] == ["pong"] * 3
    send(hub, s, "ping", {})
    [err] = drain(hub, s)
    assert err["type"] == "error"
    assert payload(err) == {"code": "rate_limited", "message": "slow down: at most 2 messages/s"}
    # Tokens come back with time: a polite client is served again.
    send(hub, s, "ping", {}, now=T0 + 0.5)
    assert [m["type"] for m in drain(hub, s)] == ["pong"]
    # Keeps flooding: errors, then a close with 4029.
    for _ in range(2):
        send(hub, s, "ping", {}, now=T0 + 0.5)
    assert [payload(m)["code"] for m in drain(hub, s)] == ["rate_limited"] * 2
    assert s.closing is None
    send(hub, s, "ping", {}, now=T0 + 0.5)
    assert s.closing == (CLOSE_RATE_LIMITED, "message rate limit exceeded repeatedly")
    assert CLOSE_RATE_LIMITED == 4029
    assert list(s.outbox) == []
    assert hub.stats.rate_limited == 4
    # The bystander is served as before.
    send(hub, bystander, "ping", {}, now=T0 + 0.5)
    assert [m["type"] for m in drain(hub, bystander)] == ["pong"]


def test_garbage_counts_against_the_rate_limit_too() -> None:
    hub = make_hub(messages_per_second=1, message_burst=2)
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    for _ in range(6):
        hub.receive(s.id, "garbage", T0)
    assert s.closing is not None and s.closing[0] == CLOSE_RATE_LIMITED
    assert hub.stats.protocol_errors == 2


def test_a_clock_stepped_back_neither_starves_nor_floods() -> None:
    hub = make_hub(messages_per_second=1, message_burst=2)
    s = hub.open(1, DASHBOARD, None, "admin", T0)
    send(hub, s, "subscribe", {"symbols": ["USD"], "frequency": 1000})
    drain(hub, s)
    hub.mark_rates([USDCAD])
    hub.flush(T0 + WINDOW)
    assert len(drain(hub, s)) == 1
    # The wall clock steps back an hour: throttled updates still flow once per interval.
    hub.mark_rates([USDCAD])
    hub.flush(T0 - 3600)
    assert len(drain(hub, s)) == 1
    hub.mark_rates([USDCAD])
    hub.flush(T0 - 3600 + WINDOW)
    assert drain(hub, s) == []
    # The token bucket neither goes negative nor refills from the step.
    send(hub, s, "ping", {}, now=T0 - 3600)
    assert [m["type"] for m in drain(hub, s)] == ["pong"]
    send(hub, s, "ping", {}, now=T0 - 3600)
    assert [m["type"] for m in drain(hub, s)] == ["error"]
