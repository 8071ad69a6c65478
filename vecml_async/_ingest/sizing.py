"""Choosing the size of the next request body (pure: no I/O, no clock of its own).

Under a call budget of R calls per second, throughput is R x bytes per call: while the
batches that are ready to go wait for budget tokens, bigger bodies carry more rows in the
same calls. Past the size where the server (or the link) becomes the bottleneck, bigger
bodies only add latency and memory. :class:`AdaptiveSize` follows that: the executor tells
it about every finished call (:class:`Measurement`: body bytes, rows, how the batch was cut,
its latency, how long it waited for its token, and whether the server refused its size or
it timed out) and asks it for the next target (:attr:`AdaptiveSize.target`).

The decisions, per *level* (the calls cut at one target). A level is *bound* when its
ready batches spent at least :data:`BOUND_SHARE` of its time waiting for tokens (calls are
the bottleneck), or when the server answered ``Request limit reached``.

* **grow** while the level is bound, by the power of two nearest below
  ``senders * (wait + latency) / latency`` (2x to :data:`MAX_STEP`): a call that is short
  next to the time between tokens can carry many times its bytes before the senders stop
  waiting (its latency grows at most in proportion to its size). It decides after
  :data:`GROW_CALLS` calls, or after one when the waiting clearly dominates
  (:data:`STRONG_SHARE`); a refusal makes it grow 4x at once (fewer, bigger calls are what
  the server asks for);
* **stop** once a level is not bound (after :data:`STOP_CALLS` calls): its calls keep up
  with the budget. The edge lies between it and the last size that waited, up to
  :data:`MAX_STEP` times smaller; one size is *checked* in between, :data:`HEADROOM` times
  the last size that waited (room for a budget that slows a little), and kept unless its
  calls wait too (then the sizer goes back up). No finer search: near the edge calls wait
  again (and, with a client ceiling above the server's limit, are refused), while a body
  a few times bigger than needed costs the server only a little more per byte (JSON
  parsing slows with the document's size);
* **step back** while growing, when a bigger level moved fewer bytes per second than the
  smaller one and its latency per MB at least doubled (the server is saturating);
* **shrink** when the server refuses a size (413) or a call times out: the target halves and
  that size becomes a ceiling the sizer never grows past again;
* once steady, it grows again if the batches wait for tokens most of the time
  (:data:`STRONG_SHARE` over :data:`STEADY_WINDOW` calls: the budget slowed down, e.g. after
  ``Request limit reached`` answers).

Every target stays within ``[minimum, maximum]``; ``maximum`` is the caller's hard limit
(``max_bytes``, itself under the 200 MB cap, and a share of the memory budget).
:class:`FixedSize` is the same interface for a size chosen by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

#: The first body size: the fastest when calls are not limited (``bench_batch_size``).
INITIAL_BYTES: Final = 1 << 20
#: The smallest size the sizer shrinks to (unless ``maximum`` is smaller).
MIN_BYTES: Final = 64 << 10
#: Share of a level's time its ready batches waited for tokens from which calls are taken
#: to be the bottleneck.
BOUND_SHARE: Final = 0.5
#: Share from which one call is evidence enough to grow.
STRONG_SHARE: Final = 0.85
#: The largest growth step.
MAX_STEP: Final = 8
#: Calls at a size before the sizer grows past it, and before it judges it not bound.
GROW_CALLS: Final = 2
STOP_CALLS: Final = 3
#: How many times the last size whose calls waited the checked size is.
HEADROOM: Final = 2
#: Calls of a steady level between two checks of whether it waits on the budget again.
STEADY_WINDOW: Final = 6

Outcome = Literal["ok", "rate_limited", "too_large", "timeout", "failed"]
Cut = Literal["bytes", "rows", "end"]
State = Literal["grow", "check", "steady"]


@dataclass(frozen=True)
class Measurement:
    """One finished call, as the executor saw it.

    Attributes:
        at: when the call ended, in seconds of any monotonic clock.
        target: the target the batch was cut at.
        body_bytes: the body's length.
        rows: rows in the body.
        latency: seconds from the call's start to its end (its retries included).
        wait: seconds the batch, ready to go, waited for its budget token.
        cut: ``"bytes"`` (the batch was full at its target), ``"rows"`` (``max_rows`` cut it
            first) or ``"end"`` (the last rows of the input, or of a stop).
        outcome: ``"ok"``, ``"rate_limited"`` (the server answered ``Request limit
            reached``: calls are the bottleneck), ``"too_large"`` (the server refused the
            size), ``"timeout"`` (the call timed out) or ``"failed"`` (any other failure, or
            a success after retries: no evidence about the size).
    """

    at: float
    target: int
    body_bytes: int
    rows: int
    latency: float
    wait: float = 0.0
    cut: Cut = "bytes"
    outcome: Outcome = "ok"


@dataclass
class Level:
    """What the calls cut at one target did: the sizer's evidence for that size."""

    calls: int = 0
    bytes: int = 0
    waited: float = 0.0
    latency: float = 0.0
    start: float = math.inf
    end: float = -math.inf

    def add(self, m: Measurement) -> None:
        self.calls += 1
        self.bytes += m.body_bytes
        self.waited += m.wait
        self.latency += m.latency
        self.start = min(self.start, m.at - m.latency - m.wait)
        self.end = max(self.end, m.at)

    @property
    def span(self) -> float:
        return max(self.end - self.start, 1e-9)

    @property
    def share(self) -> float:
        """Share of the level's time a ready batch spent waiting for a token (0..1)."""
        return min(1.0, self.waited / self.span)

    @property
    def rate(self) -> float:
        """Bytes per second the level's calls moved."""
        return self.bytes / self.span

    @property
    def latency_per_mb(self) -> float:
        return self.latency / max(self.bytes / 1e6, 1e-9)

    def step(self, senders: int) -> int:
        """How many times bigger the size can get while calls stay the bottleneck: the
        power of two nearest below ``senders * (wait + latency) / latency``, within
        2..MAX_STEP (``senders`` calls can be in flight, each as long as the time between
        two tokens times ``senders``)."""
        ratio = senders * (self.waited + self.latency) / max(self.latency, 1e-9)
        step = 2
        while step * 2 <= min(ratio, MAX_STEP):
            step *= 2
        return step


class Sizer(Protocol):
    """What the executor asks and tells: the next target, and each finished call."""

    @property
    def target(self) -> int: ...

    @property
    def history(self) -> list[int]:
        """Every target in force so far, the first one first."""

    def observe(self, m: Measurement) -> None: ...


@dataclass
class FixedSize:
    """Every body is cut at ``size`` (``batch_bytes=``); measurements change nothing."""

    size: int

    @property
    def target(self) -> int:
        return self.size

    @property
    def history(self) -> list[int]:
        return [self.size]

    def observe(self, m: Measurement) -> None:
        return None


@dataclass
class AdaptiveSize:
    """The adaptive target (see the module docstring for the rules)."""

    maximum: int
    initial: int = INITIAL_BYTES
    minimum: int = MIN_BYTES
    senders: int = 1
    state: State = "grow"
    ceiling: int = field(init=False)
    history: list[int] = field(init=False)
    _target: int = field(init=False)
    _levels: dict[int, Level] = field(init=False, default_factory=dict)
    _below: int | None = field(init=False, default=None)
    _refused_at: int | None = field(init=False, default=None)
    _settled: float = field(init=False, default=-math.inf)
    #: The size growth stopped at, while a smaller one is checked.
    _above: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.maximum < 1:
            raise ValueError("maximum must be >= 1")
        self.minimum = min(self.minimum, self.maximum)
        self.ceiling = self.maximum
        self._target = self._bounded(self.initial)
        self.history = [self._target]
        self._levels[self._target] = Level()

    @property
    def target(self) -> int:
        """The size the next batch is cut at."""
        return self._target

    def level(self, size: int) -> Level | None:
        """The evidence gathered at ``size`` since the sizer last moved to it."""
        return self._levels.get(size)

    def observe(self, m: Measurement) -> None:
        """Take one finished call into account (calls cut at an earlier target count for
        their own size, but only calls at the current target move it; a call that failed
        for any other reason than its size is no evidence)."""
        if m.outcome == "failed":
            return
        self._count(m)
        if m.outcome == "too_large":
            self._limit(m.body_bytes // 2)
        elif m.outcome == "rate_limited":
            # The server asks for fewer calls: grow (once per size; a call cut at an
            # earlier size says so too), and no probe of the half size after this.
            if self._refused_at != self._target and self._target < self.ceiling:
                self._refused_at = self._target
                self.state = "grow"
                self._move(self._target * 4)
        elif m.outcome == "timeout":
            self._limit(min(self._target, m.body_bytes) // 2)
        elif m.outcome == "ok" and m.target == self._target:
            if m.cut == "rows":
                self._limit(self._target)  # max_rows decides: more bytes would not be used
            elif m.cut == "bytes":
                self._decide(self._levels[self._target])

    def _count(self, m: Measurement) -> None:
        """Add ``m`` to its level's evidence. A call at the current size counts only if it
        started after every call of another size ended: until then those calls still load
        the server (and hold senders), and the current size would look slower and less
        bound than it is. A call of another size that ends late voids what was counted."""
        if m.target != self._target:
            self._levels.setdefault(m.target, Level()).add(m)
            self._settled = max(self._settled, m.at)
            current = self._levels.get(self._target)
            if current is not None and current.calls and current.start < m.at:
                self._levels[self._target] = Level()
            return
        if m.at - m.latency - m.wait >= self._settled:
            self._levels.setdefault(m.target, Level()).add(m)

    # ------------------------------------------------------------------ decisions

    def _decide(self, level: Level) -> None:
        if self.state == "grow":
            self._grow_or_stop(level)
        elif self.state == "check":
            if level.calls >= STOP_CALLS:
                self.state = "steady"
                if level.share >= BOUND_SHARE and self._above is not None:
                    self._move(self._above)  # too small after all: back where growth stopped
        elif level.calls >= STEADY_WINDOW:
            # A higher bar than for growing: a size settled at the edge of being bound
            # must not bounce back up on every noisy window.
            if level.share >= STRONG_SHARE and self._target < self.ceiling:
                self.state = "grow"
                self._grow_or_stop(level)
            else:
                self._levels[self._target] = Level()  # a fresh window

    def _grow_or_stop(self, level: Level) -> None:
        below = self._levels.get(self._below) if self._below is not None else None
        if below is not None and self._saturating(level, below):
            assert self._below is not None
            self.state = "steady"
            self._move(self._below)
            return
        bound = level.share >= BOUND_SHARE
        if bound and self._target >= self.ceiling:
            self.state = "steady"
        elif bound and (level.calls >= GROW_CALLS or level.share >= STRONG_SHARE):
            self._move(self._target * level.step(self.senders))
        elif not bound and level.calls >= STOP_CALLS:
            self._stop()

    def _stop(self) -> None:
        """Calls at this size keep up with the budget: check :data:`HEADROOM` times the last
        size that waited, if that is smaller (see the module docstring)."""
        smaller = self._below * HEADROOM if self._below is not None else None
        if smaller is None or smaller >= self._target:
            self.state = "steady"
            return
        self.state = "check"
        self._above = self._target
        self._move(smaller)

    @staticmethod
    def _saturating(level: Level, below: Level) -> bool:
        """The bigger size moved fewer bytes/s while its latency per MB at least doubled."""
        if level.calls < 2 or below.calls < 2:
            return False
        return level.rate < below.rate and level.latency_per_mb >= 2 * below.latency_per_mb

    # ------------------------------------------------------------------ moves

    def _limit(self, size: int) -> None:
        """Never go above ``size`` again (a refused or too slow size, or rows deciding)."""
        self.ceiling = max(self.minimum, min(self.ceiling, size))
        self.state = "steady"
        if self._target > self.ceiling:
            self._move(self.ceiling)

    def _bounded(self, size: int) -> int:
        return max(self.minimum, min(size, self.ceiling))

    def _move(self, size: int) -> None:
        new = self._bounded(size)
        if new == self._target:
            return
        self._below = self._target if new > self._target else None
        self._target = new
        self.history.append(new)
        self._levels[new] = Level()
