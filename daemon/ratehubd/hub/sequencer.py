"""The sequencer: hands a node's hub the fleet's events in seq order, each once.

Theory of operation
-------------------
In a fleet every node allocates event seqs from one counter in the shared database,
inside the transaction that logs the event, so seqs are gap-free and follow commit
order. The messages that announce them do not: node A's seq 10 may reach node C
after node B's seq 11, and a message is lost while Redis is away. The sequencer
repairs both, without I/O (time is passed in):

- ``offer(msg, now)``: an event from anywhere (this node or another). Returns the
  events now deliverable, in order: the next expected seq and any held ones behind
  it. A seq already delivered is a duplicate and is dropped. A higher one is held.
- ``missing(now)``: once the oldest held event has waited ``wait_s``, the range of
  seqs still missing, for the adapter to read from the database log.
- ``behind(committed)``: the range between what was delivered and the highest seq
  the database says was committed (the adapter polls it: an event whose message was
  lost, with nothing after it, is found this way).
- ``fill(msgs, first, last, now)``: the events the adapter read for that range.
  Seqs in the range the log does not hold (pruned) are declared a gap and skipped,
  so delivery never stalls for ever.

Held events are bounded (``limit``): past it the oldest missing range is declared a
gap at once, so a node cut off for a long time does not hoard memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ratehubd.hub.backplane import EventMessage


@dataclass
class SequencerStats:
    delivered: int = 0
    duplicates: int = 0
    reordered: int = 0  # events that arrived ahead of a lower seq and were held
    filled: int = 0  # events read from the database log
    gap_seqs: int = 0  # seqs declared lost (not in the log)


class Sequencer:
    def __init__(self, next_seq: int, wait_s: float, limit: int = 10_000) -> None:
        self.next = next_seq
        self.wait_s = wait_s
        self.limit = limit
        self._held: dict[int, tuple[EventMessage, float]] = {}
        self.stats = SequencerStats()

    @property
    def delivered_seq(self) -> int:
        """The highest seq delivered: everything at or below it was handed on (or lost)."""
        return self.next - 1

    @property
    def held(self) -> int:
        return len(self._held)

    def offer(self, msg: EventMessage, now: float) -> list[EventMessage]:
        if msg.seq < self.next or msg.seq in self._held:
            self.stats.duplicates += 1
            return []
        if msg.seq != self.next:
            self.stats.reordered += 1
        self._held[msg.seq] = (msg, now)
        out = self._drain()
        if len(self._held) > self.limit:
            out += self._skip_to(min(self._held) - 1)
        return out

    def missing(self, now: float) -> tuple[int, int] | None:
        """The seqs to read from the log, once a held event has waited long enough."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        return self.next, min(self._held) - 1

    def deadline(self) -> float | None:
        """When ``missing`` will next return a range (None: nothing is held)."""
        if not self._held:
            return None
        return min(t for _, t in self._held.values()) + self.wait_s

    def behind(self, committed: int) -> tuple[int, int] | None:
        """The seqs committed in the database but neither delivered nor held."""
        last = min(self._held) - 1 if self._held else committed
        return (self.next, last) if last >= self.next else None

    def fill(
        self, msgs: Iterable[EventMessage], first: int, last: int, now: float
    ) -> list[EventMessage]:
        """Events read from the log for ``first..last``; what it lacks is a gap."""
        out: list[EventMessage] = []
        for msg in msgs:
            if msg.seq >= self.next and msg.seq not in self._held:
                self.stats.filled += 1
                self._held[msg.seq] = (msg, now)
        out += self._drain()
        if first <= self.next <= last:
            out += self._skip_to(last)
        return out

    def reset(self, next_seq: int) -> None:
        """Start over at ``next_seq`` (the database was replaced: a new epoch)."""
        self.next = next_seq
        self._held.clear()

    def _skip_to(self, last: int) -> list[EventMessage]:
        out: list[EventMessage] = []
        while self.next <= last:
            if self.next in self._held:
                out += self._drain()
            else:
                self.stats.gap_seqs += 1
                self.next += 1
        return out + self._drain()

    def _drain(self) -> list[EventMessage]:
        out = []
        while self.next in self._held:
            out.append(self._held.pop(self.next)[0])
            self.next += 1
        self.stats.delivered += len(out)
        return out
