"""The online store of entity state: one record per entity (a card, a terminal...), read and written whole.

Each record is a Redis hash ``{v: version, s: state}`` under ``fraudops:<dataset>:<key column>:<key>`` (the key
is a pseudonym wherever the column is personal). A batch reads every record it needs in one pipelined round
trip, computes, and writes back in a second one, each write a compare-and-set on the version it read (a small
Lua script, atomic on the server): a writer that lost to another instance gets ``False`` and computes again
from the newer state. Every record expires past the longest window (plus the lateness bound) after its last
write, so an entity that stops transacting stops costing memory.

``MemoryEntityStore`` is the same port in memory, for the tests of the logic above it; ``RedisEntityStore``
is tested against a real ``redis-server`` (``cli/devtools/redis.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis

PREFIX = "fraudops"  # layout: not a blob (Redis keys)

# KEYS[1] the record; ARGV: the version read ('' when none), the new version, the state, the expiry (ms)
_CAS = """
local v = redis.call('HGET', KEYS[1], 'v')
if (v or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


class StoreUnreachableError(ConnectionError):
    """The store did not answer (refused, timed out, or dropped the connection)."""


@dataclass(frozen=True)
class Record:
    state: bytes | None  # None: no record yet
    version: str  # '' when there is none


@dataclass(frozen=True)
class Write:
    key: str
    state: bytes
    read_version: str  # the version the state was computed from
    ttl_seconds: float


@dataclass(frozen=True)
class StoreSize:
    entities: int  # records held
    bytes: int  # the server's memory in use


class EntityStore(Protocol):
    def read(self, keys: Sequence[str]) -> list[Record]: ...

    def write(self, writes: Sequence[Write]) -> list[bool]: ...

    def erase(self, keys: Sequence[str]) -> int: ...

    def size(self) -> StoreSize: ...


def record_key(dataset: str, column: str, key: str) -> str:
    return f"{PREFIX}:{dataset}:{column}:{key}"


def _next(_version: str) -> str:
    """A new version: random, so a record that expired and was created again never repeats one a writer read."""
    import secrets

    return secrets.token_hex(8)


class MemoryEntityStore:
    """The port in a dict, with the same compare-and-set rule (expiry is not modelled)."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[str, bytes]] = {}
        self._lock = threading.Lock()
        self.reachable = True

    def _check(self) -> None:
        if not self.reachable:
            raise StoreUnreachableError("the in-memory store was made unreachable")

    def read(self, keys: Sequence[str]) -> list[Record]:
        self._check()
        with self._lock:
            found = [self.records.get(k) for k in keys]
        return [Record(f[1], f[0]) if f else Record(None, "") for f in found]

    def write(self, writes: Sequence[Write]) -> list[bool]:
        self._check()
        out = []
        with self._lock:
            for w in writes:
                current = self.records.get(w.key, ("", b""))[0]
                ok = current == w.read_version
                if ok:
                    self.records[w.key] = (_next(w.read_version), w.state)
                out.append(ok)
        return out

    def erase(self, keys: Sequence[str]) -> int:
        self._check()
        with self._lock:
            return sum(self.records.pop(k, None) is not None for k in keys)

    def size(self) -> StoreSize:
        with self._lock:
            return StoreSize(len(self.records), sum(len(s) for _, s in self.records.values()))


class UnconfiguredStore:
    """No store is configured (production without ``ONLINE_STORE_URL``): every call is unavailable, with why."""

    REASON = "no online store is configured (set ONLINE_STORE_URL to the Redis that keeps the entities' state)"

    def read(self, _keys: Sequence[str]) -> list[Record]:
        raise StoreUnreachableError(self.REASON)

    def write(self, _writes: Sequence[Write]) -> list[bool]:
        raise StoreUnreachableError(self.REASON)

    def erase(self, _keys: Sequence[str]) -> int:
        raise StoreUnreachableError(self.REASON)

    def size(self) -> StoreSize:
        raise StoreUnreachableError(self.REASON)


class RedisEntityStore:
    """The port over a Redis client (``redis.Redis``): pipelined reads, pipelined compare-and-set writes."""

    def __init__(self, client: redis.Redis) -> None:
        import hashlib

        self.client = client
        self._sha = hashlib.sha1(_CAS.encode()).hexdigest()  # Redis names scripts by SHA-1

    def read(self, keys: Sequence[str]) -> list[Record]:
        if not keys:
            return []
        with _reachable():
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, "s", "v")
            got = pipe.execute()
        return [Record(s, v.decode() if v is not None else "") for s, v in got]

    def write(self, writes: Sequence[Write]) -> list[bool]:
        if not writes:
            return []
        import redis

        with _reachable():
            for _ in range(2):
                pipe = self.client.pipeline(transaction=False)
                for w in writes:  # by digest: one round trip (redis-py's Script asks first whether it is loaded)
                    ttl_ms = max(1, int(w.ttl_seconds * 1000))
                    pipe.evalsha(self._sha, 1, w.key, w.read_version, _next(w.read_version), w.state, ttl_ms)
                done = pipe.execute(raise_on_error=False)
                if not any(isinstance(d, redis.exceptions.NoScriptError) for d in done):
                    break
                self.client.script_load(_CAS)  # a new server, or one that restarted: load it, write again
            for d in done:
                if isinstance(d, Exception):  # read-only during a failover, out of memory...: not written
                    raise StoreUnreachableError(f"the online store refused a write: {d}")
            return [bool(d) for d in done]

    def erase(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        with _reachable():  # one key per command: a cluster never sees keys of two slots in one
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.delete(key)
            return sum(int(n) for n in pipe.execute())

    def size(self) -> StoreSize:
        with _reachable():
            entities = int(self.client.dbsize())
            memory: dict[str, Any] = self.client.info("memory")
        return StoreSize(entities, int(memory.get("used_memory", 0)))


class _reachable:
    """Redis's connection and timeout errors as ``StoreUnreachableError`` with a reason a person can read."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        import redis

        if exc is not None and isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            raise StoreUnreachableError(f"the online store did not answer: {exc}") from exc
        if exc is not None and isinstance(exc, redis.exceptions.RedisError):  # a failover, memory, a cluster down
            raise StoreUnreachableError(f"the online store refused the request: {exc}") from exc


def connect(
    url: str, *, password: str | None = None, entra_client_id: str | None = None, timeout: float = 0.25
) -> redis.Redis:
    """A client of ``url`` (``redis://`` or ``rediss://host:port/db``): with Entra ID tokens (Azure Managed
    Redis, the app identity; ``entra_client_id`` for a user-assigned one) when no password is given, else the
    password. Short timeouts: a scoring request must not wait on a store that is down."""
    import redis

    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if password:
        return redis.Redis.from_url(url, password=password, **options)
    from redis_entraid.cred_provider import create_from_default_azure_credential

    scopes = ("https://redis.azure.com/.default",)
    identity = {"managed_identity_client_id": entra_client_id} if entra_client_id else {}
    provider = create_from_default_azure_credential(scopes, app_kwargs=identity)
    return redis.Redis.from_url(url, credential_provider=provider, **options)
