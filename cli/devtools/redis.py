"""A private Redis server (Debian's ``redis-server`` package) on a free loopback port, with a password and no
persistence: the real server the online store uses in Azure (Azure Managed Redis), for tests and benchmarks.
Stopped by whoever started it, within a bounded time, even when its folder is gone.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class RedisNotAvailable(RuntimeError):
    """Redis's server is not installed or did not start; the message says which."""


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    password: str
    process: subprocess.Popen[bytes]

    def url(self) -> str:
        """The ``ONLINE_STORE_URL`` shape (the password travels apart, in ``ONLINE_STORE_PASSWORD``)."""
        return f"redis://{self.host}:{self.port}/0"


@contextlib.contextmanager
def private_redis(*, start_timeout: float = 30.0, stop_timeout: float = 10.0) -> Iterator[RedisServer]:
    """Start a server, yield how to reach it, stop it and delete its folder."""
    from cli.server import LOOPBACK, free_port

    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisNotAvailable("Redis's server is not installed; run 'make setup' (Debian's redis-server)")
    folder = Path(tempfile.mkdtemp(prefix="redis-private-"))
    password, port = secrets.token_urlsafe(24), free_port()
    config = folder / "redis.conf"  # the password in a file, not on a command line others can read
    config.write_text(
        f'bind {LOOPBACK}\nport {port}\nrequirepass {password}\nsave ""\nappendonly no\n'
        f"dir {folder}\ndaemonize no\nprotected-mode yes\nlogfile {folder / 'server.log'}\n"
    )
    process = subprocess.Popen([binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server = RedisServer(LOOPBACK, port, password, process)
        _wait(server, deadline=time.monotonic() + start_timeout, folder=folder)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=stop_timeout)
        shutil.rmtree(folder, ignore_errors=True)


def _wait(server: RedisServer, *, deadline: float, folder: Path) -> None:
    import redis

    client = redis.Redis(host=server.host, port=server.port, password=server.password, socket_timeout=1.0)
    try:
        while True:
            if server.process.poll() is not None:
                log = folder / "server.log"
                said = log.read_text()[-500:] if log.exists() else ""
                raise RedisNotAvailable(f"redis-server exited ({server.process.returncode}): {said.strip()}")
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError as exc:
                if time.monotonic() > deadline:
                    raise RedisNotAvailable(f"Redis did not accept connections: {exc}") from exc
                time.sleep(0.05)
    finally:
        client.close()
