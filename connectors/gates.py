"""Per-store caps: how many requests may be in flight to one store, how fast, and when to hold off.

A small self-hosted shop must see Storelink's cap however many worker processes run, so the gate of
a store lives in Redis when the deployment has one (:class:`SharedGate`), and in the process
otherwise (:class:`LocalGate`). Both enforce the same three rules before each request:

- ``Retry-After``: once the store has answered 429 (or 503 with ``Retry-After``), no request goes to
  it until the time it named has passed. A short wait is slept inline; a long one is raised as
  :class:`RateLimited`, so the job goes back to the scheduler instead of parking a worker. A request
  waits the quiet time out once and then goes (should the store still refuse it, its answer starts a
  new quiet time).
- a token bucket (requests per second, with a burst) when the platform has a rate limit;
- a semaphore: at most ``max_in_flight`` requests in flight at once.

The shared semaphore is a Redis sorted set of holder tokens scored by their lease's expiry. A holder
renews its lease while its request runs (one thread per process renews them all), so a request may
take as long as it needs; a holder that dies without releasing (SIGKILL, a lost host) stops renewing
and its slot is free once the lease runs out. Redis's own clock (``TIME``) scores every lease and
bucket, so workers on hosts with skewed clocks agree.

When Redis cannot be reached, a request is not held up: the gate falls back to the process's own gate
for a while (logging a warning), which is what a store saw before the cap was shared. The store may
then see up to one cap per worker process until Redis is back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator

from connectors.errors import RateLimited

log = logging.getLogger("connectors.gates")

#: How long we are willing to sleep inside one call for a ``Retry-After``; longer waits go back to
#: the scheduler as :class:`RateLimited` so a worker is not parked for minutes.
MAX_INLINE_RETRY_AFTER = 10.0
#: After Redis failed, requests use the process's own gate for this long before Redis is tried again
#: (each try may cost a connect timeout).
REDIS_RETRY_SECONDS = 15.0

RATE_LIMITED_MESSAGE = "The store is rate limiting Storelink; it will try again shortly."


def _hold_off(seconds: float, sleep: Callable[[float], None]) -> None:
    """Sleep a short ``Retry-After`` out, or hand a long one to the scheduler."""
    if seconds > MAX_INLINE_RETRY_AFTER:
        raise RateLimited(RATE_LIMITED_MESSAGE, retry_after=seconds)
    sleep(seconds)


class LocalGate:
    """A store's gate inside one process: a semaphore, a token bucket and a "blocked until" time."""

    def __init__(self, max_in_flight: int, rate: float | None, burst: int) -> None:
        self.max_in_flight = max(1, max_in_flight)
        self.semaphore = threading.BoundedSemaphore(self.max_in_flight)
        self.rate = rate
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.blocked_until = 0.0
        self.lock = threading.Lock()

    def wait_for_token(self, sleep: Callable[[float], None]) -> None:
        if not self.rate:
            return
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            sleep(wait)

    def wait_if_blocked(self, sleep: Callable[[float], None]) -> None:
        remaining = self.blocked_until - time.monotonic()
        if remaining > 0:
            _hold_off(remaining, sleep)

    @contextlib.contextmanager
    def slot(self, sleep: Callable[[float], None]) -> Iterator[None]:
        """Wait out a ``Retry-After``, take a token, then hold one of the in-flight slots."""
        self.wait_if_blocked(sleep)
        self.wait_for_token(sleep)
        with self.semaphore:
            yield

    def block(self, seconds: float) -> None:
        """The store asked for ``seconds`` of quiet: no request of this process goes before then."""
        if seconds <= 0:
            return
        with self.lock:
            self.blocked_until = max(self.blocked_until, time.monotonic() + seconds)


# --------------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------------

# KEYS: holders (sorted set), blocked (string with a TTL), bucket (hash)
# ARGV: max in flight, lease ms, holder token, rate per second (0: none), burst, 1 to skip the quiet
# Returns {0, 0} when the slot is taken, {1, ms} when the store is blocked for ms, {2, ms} when the
# rate allows the next request in ms, {3, ms} when every slot is held (the earliest lease ends in ms).
_ENTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[6] ~= '1' then
  local blocked = redis.call('PTTL', KEYS[2])
  if blocked > 0 then return {1, blocked} end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= limit then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {3, math.max(1, tonumber(first[2]) - now)}
end
local rate = tonumber(ARGV[4])
if rate > 0 then
  local burst = tonumber(ARGV[5])
  local state = redis.call('HMGET', KEYS[3], 'tokens', 'at')
  local tokens = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
  if tokens < 1 then
    redis.call('HSET', KEYS[3], 'tokens', tostring(tokens), 'at', tostring(now))
    return {2, math.max(1, math.ceil((1 - tokens) * 1000 / rate))}
  end
  redis.call('HSET', KEYS[3], 'tokens', tostring(tokens - 1), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[3], math.ceil(burst * 1000 / rate) + 60000)
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
redis.call('PEXPIRE', KEYS[1], lease * 2 + 60000)
return {0, 0}
"""

# KEYS: holders; ARGV: lease ms, tokens... Renews the leases still held (XX: a lease that already
# ran out is not brought back).
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], lease * 2 + 60000)
return 1
"""

# KEYS: blocked; ARGV: ms. Extends the quiet period, never shortens it.
_BLOCK = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"""


class SharedGates:
    """One process's connection to the Redis that holds every store's gate, and its lease renewer."""

    def __init__(
        self, url: str, *, lease_seconds: float = 15.0, prefix: str = "storelink:store-gate:"
    ) -> None:
        import redis

        self.errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self.redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self.lease_ms = max(1000, int(lease_seconds * 1000))
        self.prefix = prefix
        self._enter = self.redis.register_script(_ENTER)
        self._renew = self.redis.register_script(_RENEW)
        self._block = self.redis.register_script(_BLOCK)
        self._held: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._down_until = 0.0
        self._warned_at = 0.0

    # -- health ------------------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, exc: Exception) -> None:
        """Redis did not answer: use process gates for a while, and say so (at most once a minute)."""
        now = time.monotonic()
        self._down_until = now + REDIS_RETRY_SECONDS
        if now - self._warned_at >= 60 or not self._warned_at:
            self._warned_at = now
            log.warning(
                "store_gate.redis_unavailable: per-store caps fall back to each worker process's own "
                "gate for %.0f s (%s)",
                REDIS_RETRY_SECONDS,
                type(exc).__name__,
            )

    # -- holders -----------------------------------------------------------------------------------

    def keys(self, gate_key: str) -> list[str]:
        base = f"{self.prefix}{gate_key}"
        return [f"{base}:holders", f"{base}:blocked", f"{base}:bucket"]

    def enter(
        self, gate_key: str, limit: int, rate: float | None, burst: int, token: str, *, skip_quiet: bool
    ) -> tuple[int, int]:
        """One attempt at a slot (see ``_ENTER``); the holder is renewed until :meth:`leave`."""
        status, ms = self._enter(
            keys=self.keys(gate_key),
            args=[limit, self.lease_ms, token, rate or 0, max(1, burst), int(skip_quiet)],
        )
        if int(status) == 0:
            with self._lock:
                self._held.setdefault(self.keys(gate_key)[0], set()).add(token)
            self._start_renewer()
        return int(status), int(ms)

    def leave(self, gate_key: str, token: str) -> None:
        holders = self.keys(gate_key)[0]
        with self._lock:
            tokens = self._held.get(holders)
            if tokens is not None:
                tokens.discard(token)
                if not tokens:
                    del self._held[holders]
        self.redis.zrem(holders, token)

    def block(self, gate_key: str, seconds: float) -> None:
        self._block(keys=[self.keys(gate_key)[1]], args=[max(1, int(seconds * 1000))])

    def _start_renewer(self) -> None:
        if self._renewer is not None and self._renewer.is_alive():
            return
        with self._lock:
            if self._renewer is None or not self._renewer.is_alive():
                self._renewer = threading.Thread(
                    target=self._renew_forever, name="store-gate-leases", daemon=True
                )
                self._renewer.start()

    def _renew_forever(self) -> None:
        while True:
            time.sleep(self.lease_ms / 3000)
            with self._lock:
                held = {key: list(tokens) for key, tokens in self._held.items() if tokens}
            for holders, tokens in held.items():
                try:
                    self._renew(keys=[holders], args=[self.lease_ms, *tokens])
                except self.errors as exc:  # the leases run out; the slots free themselves
                    self.failed(exc)


_shared: dict[tuple[int, str, float, str], SharedGates] = {}
_shared_lock = threading.Lock()


def shared_gates(url: str, lease_seconds: float, prefix: str) -> SharedGates:
    """The process's :class:`SharedGates` for ``url`` (one per process id: a fork gets its own)."""
    key = (os.getpid(), url, float(lease_seconds), prefix)
    gates = _shared.get(key)
    if gates is None:
        with _shared_lock:
            gates = _shared.get(key)
            if gates is None:
                for stale in [k for k in _shared if k[0] != key[0]]:
                    del _shared[stale]
                gates = _shared[key] = SharedGates(url, lease_seconds=lease_seconds, prefix=prefix)
    return gates


class SharedGate:
    """A store's gate held in Redis, so every worker process counts against the same cap."""

    #: Longest pause between two attempts at a full gate (a slot may free at any moment).
    MAX_POLL = 0.1

    def __init__(self, key: str, backend: SharedGates, local: LocalGate) -> None:
        self.key = key
        self.backend = backend
        self.local = local
        self.max_in_flight = local.max_in_flight
        self.rate = local.rate
        self.capacity = local.capacity

    @contextlib.contextmanager
    def slot(self, sleep: Callable[[float], None]) -> Iterator[None]:
        """Wait out a ``Retry-After``, the rate and a free slot across all processes; hold the slot."""
        token = self._acquire(sleep)
        if token is None:
            with self.local.slot(sleep):
                yield
            return
        try:
            yield
        finally:
            try:
                self.backend.leave(self.key, token)
            except self.backend.errors as exc:  # the lease runs out on its own
                self.backend.failed(exc)

    def _acquire(self, sleep: Callable[[float], None]) -> str | None:
        """A holder token once a slot is ours, or ``None`` when Redis cannot be reached."""
        token = f"{os.getpid()}:{secrets.token_hex(8)}"
        pause = 0.005
        held_off = False
        while self.backend.available:
            try:
                status, ms = self.backend.enter(
                    self.key,
                    self.max_in_flight,
                    self.rate,
                    int(self.capacity),
                    token,
                    skip_quiet=held_off,
                )
            except self.backend.errors as exc:
                self.backend.failed(exc)
                break
            if status == 0:
                return token
            if status == 1:
                _hold_off(ms / 1000, sleep)
                held_off = True
            elif status == 2:
                sleep(ms / 1000)
            else:  # full: poll, a little slower each time and never in step with the other waiters
                sleep(min(ms / 1000, pause * (1 + random.random())))
                pause = min(self.MAX_POLL, pause * 2)
        return None

    def block(self, seconds: float) -> None:
        """The store asked for ``seconds`` of quiet: no process sends it anything before then."""
        self.local.block(seconds)
        if seconds <= 0 or not self.backend.available:
            return
        try:
            self.backend.block(self.key, seconds)
        except self.backend.errors as exc:
            self.backend.failed(exc)
