"""The sequencer (sans-I/O): a fleet's events reach a node's hub in seq order, each once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ratehubd.hub.backplane import EventMessage
from ratehubd.hub.hub import Hub
from ratehubd.hub.sequencer import Sequencer


def ev(seq: int) -> EventMessage:
    return EventMessage("rate_override_set", {"n": seq}, None, seq, 0.0)


def seqs(msgs: list[EventMessage]) -> list[int]:
    return [m.seq for m in msgs]


def test_in_order_events_pass_at_once() -> None:
    s = Sequencer(1, wait_s=0.5)
    assert seqs(s.offer(ev(1), 0.0)) == [1]
    assert seqs(s.offer(ev(2), 0.0)) == [2]
    assert s.delivered_seq == 2 and s.held == 0 and s.deadline() is None


def test_a_later_seq_waits_for_the_missing_one_then_both_go_in_order() -> None:
    s = Sequencer(1, wait_s=0.5)
    assert s.offer(ev(2), 0.0) == []
    assert s.offer(ev(3), 0.1) == []
    assert s.held == 2 and s.stats.reordered == 2
    assert seqs(s.offer(ev(1), 0.2)) == [1, 2, 3]
    assert s.held == 0


def test_duplicates_and_echoes_are_dropped() -> None:
    s = Sequencer(1, wait_s=0.5)
    s.offer(ev(1), 0.0)
    s.offer(ev(3), 0.0)
    assert s.offer(ev(1), 0.0) == [] and s.offer(ev(3), 0.0) == []
    assert s.stats.duplicates == 2


def test_the_missing_range_is_asked_for_only_after_the_wait() -> None:
    s = Sequencer(5, wait_s=0.5)
    s.offer(ev(8), 10.0)
    s.offer(ev(9), 10.3)
    assert s.deadline() == 10.5
    assert s.missing(10.49) is None
    assert s.missing(10.5) == (5, 7)


def test_a_fill_from_the_log_delivers_everything_in_order() -> None:
    s = Sequencer(5, wait_s=0.5)
    s.offer(ev(8), 0.0)
    out = s.fill([ev(5), ev(6), ev(7)], 5, 7, 1.0)
    assert seqs(out) == [5, 6, 7, 8]
    assert s.stats.filled == 3 and s.stats.gap_seqs == 0


def test_what_the_log_no_longer_has_is_declared_a_gap_and_delivery_goes_on() -> None:
    s = Sequencer(5, wait_s=0.5)
    s.offer(ev(8), 0.0)
    out = s.fill([ev(7)], 5, 7, 1.0)  # 5 and 6 were pruned
    assert seqs(out) == [7, 8]
    assert s.stats.gap_seqs == 2 and s.delivered_seq == 8


def test_a_fill_racing_a_message_delivers_each_seq_once() -> None:
    s = Sequencer(1, wait_s=0.5)
    s.offer(ev(3), 0.0)
    assert seqs(s.offer(ev(1), 0.6)) == [1]  # arrived while the log was being read
    assert seqs(s.fill([ev(1), ev(2)], 1, 2, 0.7)) == [2, 3]
    assert s.stats.filled == 1


def test_behind_names_committed_events_no_message_announced() -> None:
    s = Sequencer(4, wait_s=0.5)
    assert s.behind(3) is None
    assert s.behind(6) == (4, 6)
    s.offer(ev(6), 0.0)
    assert s.behind(6) == (4, 5)  # 6 itself is held


def test_held_events_are_bounded() -> None:
    s = Sequencer(1, wait_s=60, limit=3)
    for seq in (3, 4, 5):
        assert s.offer(ev(seq), 0.0) == []
    assert seqs(s.offer(ev(6), 0.0)) == [3, 4, 5, 6]  # 1 and 2 given up as a gap
    assert s.stats.gap_seqs == 2


@given(st.permutations(list(range(1, 30))), st.sets(st.integers(1, 29), max_size=5))
def test_any_arrival_order_with_losses_is_delivered_in_order_once(
    order: list[int], lost: set[int]
) -> None:
    s = Sequencer(1, wait_s=1.0)
    out: list[int] = []
    t = 0.0
    for seq in order:
        if seq not in lost:
            out += seqs(s.offer(ev(seq), t))
        t += 0.1
        span = s.missing(t)
        if span is not None:
            first, last = span
            out += seqs(s.fill([ev(x) for x in range(first, last + 1)], first, last, t))
    for _ in range(30):  # the adapter's loop: wait, then read what is still missing
        t += 1.0
        span = s.missing(t) or s.behind(29)
        if span is None:
            break
        out += seqs(s.fill([ev(x) for x in range(span[0], span[1] + 1)], *span, t))
    assert out == list(range(1, 30))


def test_a_hub_resumes_a_client_that_is_ahead_of_it_and_skips_what_it_has() -> None:
    """A client that saw seq 5 on another node resumes here while this hub is at 3."""
    hub = Hub(epoch="e", pairs=[], rates=lambda store: {}, resume_ahead=100)
    for seq in (1, 2, 3):
        hub.publish_event("rate_override_set", {"n": seq}, None, 0.0, seq)
    s = hub.open(1, "dashboard", None, "k", 0.0, last_seq=5, last_epoch="e")
    hub.take_ready()
    texts = [f.text for f in s.outbox]
    assert any('"recovered":true' in t for t in texts), texts
    s.outbox.clear()
    for seq in (4, 5, 6):
        hub.publish_event("rate_override_set", {"n": seq}, None, 0.0, seq)
    assert [f.seq for f in s.outbox] == [6]


def test_a_hub_without_resume_ahead_still_reports_the_gap() -> None:
    hub = Hub(epoch="e", pairs=[], rates=lambda store: {})
    s = hub.open(1, "dashboard", None, "k", 0.0, last_seq=5, last_epoch="e")
    assert any('"recovered":false' in f.text for f in s.outbox)
