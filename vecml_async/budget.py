"""Budgets shared between processes: one rate limit for every worker that uses one API key.

VecML limits calls per second per key. N processes with private limiters at R calls/s send
up to N x R and are refused; :class:`RedisBudget` keeps one budget in Redis instead, for
any number of processes on any number of machines::

    budget = RedisBudget("redis://cache:6379/0", 20, name="vecml-prod")
    client = AsyncVecML(rate_limit=budget)  # every call of the client spends it

Each acquire runs one Lua script (:mod:`vecml_async._budget_lua`) that reads Redis's clock
(``TIME``), reserves the next GCRA slot and answers how long to wait; the worker sleeps that
long locally. The adaptive state lives in Redis too: a burst of refusals seen by many
workers lowers the shared rate once, and it recovers gradually for everyone.

Needs the ``redis`` extra (``pip install 'vecml-async[redis]'``, redis-py's asyncio API).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from vecml_async._budget_lua import BUDGET_SCRIPT
from vecml_async._budget_state import HISTORY, REBUILD_FRACTION
from vecml_async._config import RateLimitPolicy
from vecml_async._limiter import Budget, RateLimiter, require_asyncio, sleep_until_slot
from vecml_async.errors import InvalidInputError, VecMLError

if TYPE_CHECKING:
    import redis.asyncio

__all__ = [
    "DEFAULT_BUDGET_NAME",
    "DEFAULT_MARGIN",
    "Budget",
    "BudgetUnavailableError",
    "RedisBudget",
]

logger = logging.getLogger("vecml_async")

#: The budget name used when none is given: processes with the same name share a budget.
DEFAULT_BUDGET_NAME = "default"
#: Seconds of lateness a shared budget's slots leave room for (see ``margin``).
DEFAULT_MARGIN = 0.05
_KEY_PREFIX = "vecml-async:budget:"


class BudgetUnavailableError(VecMLError):
    """The shared budget could not be reached (e.g. Redis is down), so no call was started.

    Attributes:
        message: what went wrong (never contains the Redis URL, which may hold a password).
        budget: the budget's name.
    """

    def __init__(self, message: str, *, budget: str) -> None:
        self.message = message
        self.budget = budget
        super().__init__(f"shared budget {budget!r} unavailable: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_unavailable, (self.message, self.budget))


def _rebuild_unavailable(message: str, budget: str) -> BudgetUnavailableError:
    return BudgetUnavailableError(message, budget=budget)


def _redis_module() -> Any:
    try:
        import redis.asyncio
    except ImportError:
        raise ImportError("RedisBudget needs redis-py: pip install 'vecml-async[redis]'") from None
    return redis


class RedisBudget:
    """One call budget in Redis, shared by every process that names it.

    Args:
        url: the Redis URL (``redis://``, ``rediss://`` or ``unix://``).
        calls_per_second: the ceiling R for all processes together: no one-second window
            (on Redis's clock) holds more than R call starts.
        margin: seconds a call may start (or reach the server) late after its slot and still
            arrive within R per second as the server counts: slots are ``(1 + margin) / R``
            apart. The default, :data:`DEFAULT_MARGIN`, costs about 5% of R and absorbs the
            reply latency, sleep lateness and network jitter of a busy machine; ``0`` spends
            the full R where the server tolerates a call or two of burst. A call that wakes
            later than that after its slot (its event loop was busy) takes a new slot.
        name: the budget's name; processes with the same name (and Redis) share it.
            Default :data:`DEFAULT_BUDGET_NAME`. Every process must use the same R.
        policy: the adaptive behaviour (decrease factor, recovery, floor, burst interval);
            its ``calls_per_second`` is replaced by ``calls_per_second``.
        fallback: what to do when Redis cannot be reached. ``None`` (default): raise
            :class:`BudgetUnavailableError` from ``acquire()``, so no call starts unbudgeted.
            An int N: the number of processes that share the budget; each then runs a
            private limiter at R / N calls/s and tries Redis again every
            ``retry_interval`` seconds (the total stays at R only if N is right).
        timeout: seconds to wait for Redis (connect and each command).
        retry_interval: seconds between attempts to reach Redis again while falling back.
        key_ttl: seconds after which an unused budget's keys expire in Redis.

    Use ``async with`` or :meth:`aclose` to close its connections; the client it is given
    to (``AsyncVecML(rate_limit=budget)``) does not close it.
    """

    def __init__(
        self,
        url: str,
        calls_per_second: float,
        *,
        name: str | None = None,
        policy: RateLimitPolicy | None = None,
        margin: float = DEFAULT_MARGIN,
        fallback: int | None = None,
        timeout: float = 2.0,
        retry_interval: float = 5.0,
        key_ttl: float = 3600.0,
    ) -> None:
        if isinstance(calls_per_second, bool) or not calls_per_second > 0:
            raise InvalidInputError("must be > 0", field="calls_per_second")
        if fallback is not None and (isinstance(fallback, bool) or fallback < 1):
            raise InvalidInputError("must be None or a number of processes >= 1", field="fallback")
        if not 0 <= margin < 1:
            raise InvalidInputError("must be in [0, 1) seconds", field="margin")
        self._redis = _redis_module()
        self.name = name or DEFAULT_BUDGET_NAME
        self.calls_per_second = float(calls_per_second)
        base = policy or RateLimitPolicy()
        self.policy = RateLimitPolicy(
            calls_per_second=self.calls_per_second,
            adaptive=base.adaptive,
            min_calls_per_second=base.min_calls_per_second,
            decrease_factor=base.decrease_factor,
            recovery_per_second=base.recovery_per_second,
            decrease_interval=base.decrease_interval,
        )
        self.margin = float(margin)
        self.fallback = fallback
        self._url = url
        self._timeout = timeout
        self._retry_interval = retry_interval
        self._ttl_ms = int(key_ttl * 1000)
        self._keys = [f"{_KEY_PREFIX}{{{self.name}}}", f"{_KEY_PREFIX}{{{self.name}}}:starts"]
        self._client: redis.asyncio.Redis | None = None
        self._script: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rate: float | None = self.calls_per_second
        self._local: RateLimiter | None = None
        self._local_until = 0.0
        self._pending: set[asyncio.Task[None]] = set()
        self.rate_limited_count = 0

    def __repr__(self) -> str:
        return (
            f"RedisBudget(name={self.name!r}, calls_per_second={self.calls_per_second!r}, "
            f"current_rate={self.current_rate!r})"
        )

    async def __aenter__(self) -> RedisBudget:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def current_rate(self) -> float | None:
        """The shared rate as of this process's last exchange with Redis (or the local
        fallback's rate while Redis is unreachable)."""
        if self._local is not None and time.monotonic() < self._local_until:
            return self._local.current_rate
        return self._rate

    async def acquire(self) -> None:
        """Reserve the next shared slot and sleep until it (see the class docstring for
        what happens when Redis is unreachable)."""
        require_asyncio()
        if self._local is not None and time.monotonic() < self._local_until:
            await self._local.acquire()
            return
        try:
            await sleep_until_slot(self._take_slot, self.margin)
        except BudgetUnavailableError:
            if self.fallback is None:
                raise
            await self._fall_back().acquire()

    async def _take_slot(self) -> float:
        return await self._call("acquire")

    def on_rate_limited(self) -> None:
        """The server refused a call: tell Redis (in the background), which lowers the
        shared rate once per burst, whichever workers see the refusals."""
        self.rate_limited_count += 1
        if self._local is not None and time.monotonic() < self._local_until:
            self._local.on_rate_limited()
            return
        task = asyncio.get_running_loop().create_task(self._report_refusal())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def on_success(self) -> None:
        """Nothing to send: the shared rate recovers with Redis's clock, on acquire."""
        if self._local is not None and time.monotonic() < self._local_until:
            self._local.on_success()

    async def refresh(self) -> float | None:
        """Ask Redis for the shared rate now (after any recovery due); also :attr:`current_rate`."""
        await self._call("peek")
        return self._rate

    async def reset(self) -> None:
        """Forget the shared state (rate, slots, history) in Redis, for every process."""
        client = self._connection()
        try:
            await client.delete(*self._keys)
        except (self._redis.RedisError, OSError) as err:
            raise self._unavailable(err) from None

    async def aclose(self) -> None:
        """Wait for refusal reports still in flight, then close the connections."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._client is not None:
            client, self._client, self._script = self._client, None, None
            await client.aclose()

    # ------------------------------------------------------------------ Redis

    def _connection(self) -> redis.asyncio.Redis:
        """The client for the running loop (redis-py connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = self._redis.asyncio.from_url(
                self._url,
                decode_responses=True,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
            )
            self._script = self._client.register_script(BUDGET_SCRIPT)
            self._loop = loop
        return self._client

    def _args(self, op: str) -> list[str]:
        p = self.policy
        return [
            op,
            repr(self.calls_per_second),
            "1" if p.adaptive else "0",
            repr(p.min_calls_per_second),
            repr(p.decrease_factor),
            repr(p.recovery_per_second),
            repr(p.decrease_interval),
            str(self._ttl_ms),
            str(HISTORY),
            repr(REBUILD_FRACTION),
            repr(self.margin),
        ]

    async def _call(self, op: str) -> float:
        """Run the script once; the seconds to wait, and the shared rate is remembered."""
        self._connection()
        try:
            answer = await self._script(keys=self._keys, args=self._args(op))
        except (self._redis.RedisError, OSError) as err:
            raise self._unavailable(err) from None
        wait, rate = float(answer[0]), answer[1]
        self._rate = float(rate) if rate != "" else None
        if answer[2] == "1":
            logger.info("shared budget %r: rate now %s calls/s", self.name, rate or "unlimited")
        if self._local is not None:
            logger.info("shared budget %r: Redis reachable again", self.name)
            self._local = None
        return wait

    async def _report_refusal(self) -> None:
        try:
            await self._call("refused")
        except BudgetUnavailableError as err:
            # The next acquire meets the same problem and reports it; a lost refusal only
            # delays the decrease.
            logger.warning("%s (refusal not recorded)", err)

    def _unavailable(self, err: BaseException) -> BudgetUnavailableError:
        return BudgetUnavailableError(
            f"Redis did not answer ({type(err).__name__})", budget=self.name
        )

    def _fall_back(self) -> RateLimiter:
        assert self.fallback is not None
        if self._local is None:
            share = self.calls_per_second / self.fallback
            self._local = RateLimiter(
                RateLimitPolicy(
                    calls_per_second=share,
                    adaptive=self.policy.adaptive,
                    min_calls_per_second=min(self.policy.min_calls_per_second, share),
                    decrease_factor=self.policy.decrease_factor,
                    recovery_per_second=self.policy.recovery_per_second,
                    decrease_interval=self.policy.decrease_interval,
                )
            )
            logger.warning(
                "shared budget %r: Redis unreachable, falling back to %.2f calls/s locally",
                self.name,
                share,
            )
        self._local_until = time.monotonic() + self._retry_interval
        return self._local


_: type[Budget] = RedisBudget  # RedisBudget satisfies the Budget protocol (checked by mypy)
