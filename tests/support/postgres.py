"""A throwaway PostgreSQL server for the tests: its own cluster in a temporary
directory, on a free port of 127.0.0.1, removed when the session ends.

PostgreSQL refuses to run as root, and CI runs the suite as root: then initdb and
pg_ctl run as the `postgres` OS user (created by Debian's `postgresql` package) and the
temporary directory is handed to that user. Each test gets a database of its own.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from support.net import free_port

#: Where Debian's packages put the server programs (they are not on PATH there).
DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server programs, or the server did not start; says what to do."""


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: PATH first, else the newest
    Debian install."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/").glob(DEBIAN_BINDIRS.lstrip("/")), key=lambda p: _major(p.parent.name))
    for bindir in reversed(candidates):
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise PostgresUnavailable("PostgreSQL server programs not found: `apt-get install postgresql` (make test does)")


def _major(name: str) -> int:
    return int(name) if name.isdigit() else 0


class PostgresServer:
    """initdb → pg_ctl start → … → pg_ctl stop → rm -rf, all in one temporary directory."""

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.host = "127.0.0.1"
        self.port = 0
        self._as_user = SUPERUSER if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="swf-broker-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        # CREATE DATABASE takes a few tenths of a second; the next test's database is
        # made in the background while the current test runs.
        self._maker = ThreadPoolExecutor(1, thread_name_prefix="postgres-createdb")
        self._spare: Future[str] | None = None

    def start(self) -> PostgresServer:
        if self._as_user:
            entry = pwd.getpwnam(self._as_user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        # No fsync: a throwaway cluster that never outlives the test session, and the
        # tests kill brokers, never this server.
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        for _attempt in range(3):  # a free port can be taken between the probe and the bind
            self.port = free_port()
            options = (
                f"-c listen_addresses={self.host} -p {self.port} -k {self.root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
            )
            result = self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
                check=False,
            )
            if result.returncode == 0:
                return self
        raise PostgresUnavailable(f"PostgreSQL did not start:\n{self.log_text()}")

    def stop(self) -> None:
        self._maker.shutdown(wait=True, cancel_futures=True)
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        """A SQLAlchemy URL for the broker (psycopg 3 driver)."""
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    @contextmanager
    def database(self) -> Iterator[str]:
        """A fresh, empty database for one test; its URL. Dropped afterwards, even if a
        broker killed with -9 left connections behind."""
        name = self._spare.result() if self._spare else self._create_database()
        self._spare = self._maker.submit(self._create_database)
        try:
            yield self.url(name)
        finally:
            self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _create_database(self) -> str:
        name = f"broker_{uuid.uuid4().hex[:12]}"
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no server log)"

    def _admin(self, statement: sql.Composed) -> None:
        conninfo = f"host={self.host} port={self.port} user={SUPERUSER} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(statement)

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / program), *args]
        if self._as_user:
            command = ["runuser", "-u", self._as_user, "--", *command]
        # pg_ctl's -w start keeps stdout open through the server it leaves running
        # unless the output goes to a file: send it to the log, not to a pipe.
        with open(os.devnull, "w") as devnull:
            result = subprocess.run(
                command, stdout=devnull, stderr=subprocess.PIPE, text=True, timeout=120, cwd=self.root
            )
        if check and result.returncode != 0:
            raise PostgresUnavailable(f"{program} failed ({result.returncode}): {result.stderr}")
        return result
