"""A real PostgreSQL server for the tests: Debian's ``postgresql`` package, started once per
test session on loopback, on a free port, in a temporary folder, and removed afterwards.

Why initdb and pg_ctl by hand rather than pytest-postgresql: CI runs as root, and initdb
refuses to run as root; pytest-postgresql runs it as the current user. Here the server runs as
an unprivileged user (``nobody``) when the tests run as root, as themselves otherwise. The
server lives only as long as the session, and nothing of it outlives the temporary folder.

Connections from the tests come over TCP on 127.0.0.1 as role ``mystery`` with a password
(scram-sha-256), so the tests see what a team sees: a URL with a user, a host, a port and a
password, and the password checked. The superuser connects over the folder's Unix socket only,
to make a fresh database per test.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from itertools import count
from pathlib import Path

PASSWORD = "s3cret-Pa55word"
"""The test role's password: the tests check it never reaches a message, output or store."""


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server; :meth:`database` makes an empty database and gives its URL."""

    folder: Path
    port: int
    bin: Path
    user: str | None  # who the server runs as (None: as the tests)
    _numbers: count[int]

    @classmethod
    def start(cls) -> PostgresServer:
        bin_ = binaries()
        if bin_ is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql "
                               "(.ci/run does it)")
        user = "nobody" if os.geteuid() == 0 else None
        folder = Path(tempfile.mkdtemp(prefix="mystery-pg-"))
        if user is not None:
            shutil.chown(folder, user)
        data = folder / "data"
        pwfile = folder / "pw"
        pwfile.write_text(PASSWORD)
        if user is not None:
            shutil.chown(pwfile, user)
        port = _free_port()
        server = cls(folder, port, bin_, user, count(1))
        server._run("initdb", "-D", str(data), "-U", "postgres", "-E", "UTF8",
                    "--auth-local=trust", "--auth-host=scram-sha-256", "--no-instructions",
                    "--pwfile", str(pwfile))
        server._run("pg_ctl", "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60",
                    "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
                    "-c fsync=off -c max_connections=200 "
                    "-c shared_preload_libraries=pg_stat_statements", "start")
        server.psql("CREATE ROLE mystery LOGIN CREATEDB PASSWORD '" + PASSWORD + "'")
        return server

    def _run(self, tool: str, *args: str) -> str:
        done = subprocess.run([str(self.bin / tool), *args], capture_output=True, text=True,
                              user=self.user, cwd=self.folder, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        return self._run("psql", "-h", str(self.folder), "-p", str(self.port), "-U", "postgres",
                         "-d", dbname, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql)

    def url(self, dbname: str, password: str | None = PASSWORD) -> str:
        secret = f":{password}" if password is not None else ""
        return f"postgresql://mystery{secret}@127.0.0.1:{self.port}/{dbname}"

    def database(self) -> str:
        """A new, empty database owned by the test role; its URL (with the password)."""
        name = f"study_{next(self._numbers)}"
        self.psql(f"CREATE DATABASE {name} OWNER mystery")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w",
                      "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def dump(server: PostgresServer, url: str) -> str:
    """Everything a store's database holds, as SQL text (``pg_dump``, less the random
    ``\\restrict`` key each dump carries)."""
    dbname = url.rsplit("/", 1)[1]
    text = server._run("pg_dump", "-h", str(server.folder), "-p", str(server.port),
                       "-U", "postgres", dbname)
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith(("\\restrict", "\\unrestrict")))


def tables(server: PostgresServer, url: str) -> list[str]:
    """The tables of a store's database, sorted."""
    dbname = url.rsplit("/", 1)[1]
    return server.psql("SELECT table_name FROM information_schema.tables WHERE "
                       "table_schema = 'public' ORDER BY 1", dbname).split()
