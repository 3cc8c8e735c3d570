"""A private PostgreSQL server (Debian's ``postgresql`` package) on a free loopback port with a throw-away
data folder: the real database MLflow's tracking store uses in Azure (``infra/modules/mlflow.bicep``),
for the tests of that path. Password authentication (SCRAM) over TCP only, as on Azure, where the
password is the app identity's Entra ID token.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USER, DATABASE = "fraudops", "mlflow"  # layout: not a blob (the database)


class PostgresNotAvailable(RuntimeError):
    """PostgreSQL's server programs are not installed or the server did not start; the message says which."""


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str
    database: str

    def uri(self, password: str | None = None) -> str:
        """A SQLAlchemy URI (MLflow's ``MLFLOW_TRACKING_URI`` shape) with ``password`` or the real one."""
        return f"postgresql://{self.user}:{password or self.password}@{self.host}:{self.port}/{self.database}"


def server_bin() -> Path:
    """The folder of ``initdb`` and ``pg_ctl`` (Debian keeps them out of PATH, under the major version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        on_path = shutil.which("pg_ctl")
        if on_path is None:
            raise PostgresNotAvailable("PostgreSQL's server is not installed; run 'make setup' (Debian's postgresql)")
        return Path(on_path).parent
    return Path(found[-1]).parent


@contextlib.contextmanager
def private_postgres(*, start_timeout: float = 60.0) -> Iterator[Postgres]:
    """Start a server with one user and one database, yield how to reach it, stop it and delete its data."""
    from cli.server import free_port

    bin_dir = server_bin()
    folder = Path(tempfile.mkdtemp(prefix="postgres-private-"))
    password = secrets.token_urlsafe(24)
    # the server refuses to run as root: on a root CI machine it runs as Debian's ``postgres`` user
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    (folder / "pw").write_text(password)
    if as_user:
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "pw", "postgres")
    data, port = folder / "data", free_port()
    log = folder / "server.log"
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(folder / "pw")]
    initdb += ["-A", "scram-sha-256", "--no-sync", "-E", "UTF8"]
    try:
        _run(as_user + initdb)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
        _run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"])
        server = Postgres("127.0.0.1", port, USER, password, DATABASE)
        _create_database(server, deadline=time.monotonic() + start_timeout)
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            _run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _run(command: list[str], *, check: bool = True) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise PostgresNotAvailable(f"{Path(command[-1]).name}: {done.stderr.strip() or done.stdout.strip()}")


def _create_database(server: Postgres, *, deadline: float) -> None:
    import psycopg2

    while True:
        try:
            connection = psycopg2.connect(
                host=server.host, port=server.port, user=server.user, password=server.password, dbname="postgres"
            )
            break
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                raise PostgresNotAvailable(f"PostgreSQL did not accept connections: {exc}") from exc
            time.sleep(0.2)
    connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {server.database}")
    finally:
        connection.close()
