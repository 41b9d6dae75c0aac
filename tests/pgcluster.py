"""A private, throwaway PostgreSQL cluster for a test (``initdb`` into a temporary directory).

    with PgCluster() as pg:          # initdb + start; stop + remove at the end
        pg.params()                  # psycopg2 connection parameters of the role "odoo" (random password)
        pg.restart()                 # pg_ctl restart -m fast

It listens on 127.0.0.1 on a free port (scram-sha-256 password for TCP) and on a unix socket in its own
directory (trust, for the superuser "postgres" that creates the role). As root the server binaries run as
the ``postgres`` OS user (initdb refuses root). The machine's own clusters are never touched.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import free_port


class PgClusterError(RuntimeError):
    pass


def find_bindir() -> Path | None:
    """The directory of initdb / pg_ctl / postgres: ``pg_config --bindir``, else the highest
    /usr/lib/postgresql/<version>/bin (Debian's layout)."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted((p for p in root.iterdir() if p.name.replace(".", "").isdigit()),
                          key=lambda p: [int(x) for x in p.name.split(".")], reverse=True)
        candidates += [p / "bin" for p in versions]
    for bindir in candidates:
        if all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


class PgCluster:
    def __init__(self, user: str = "odoo", password: str | None = None, bindir: Path | None = None,
                 settings: dict | None = None):
        self.bindir = bindir or find_bindir()
        if self.bindir is None:
            raise PgClusterError("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found: "
                                 "neither `pg_config --bindir` nor /usr/lib/postgresql/<version>/bin")
        self.user = user
        self.password = password or secrets.token_urlsafe(12)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.settings = {"fsync": "off", "full_page_writes": "off", "shared_buffers": "32MB",
                         "max_connections": "100", **(settings or {})}
        self.dir: Path | None = None
        self.os_user = "postgres" if os.geteuid() == 0 else None

    # -- paths and commands ------------------------------------------------------------------

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.dir / "socket"

    @property
    def log_path(self) -> Path:
        return self.dir / "postgres.log"

    def _run(self, name: str, *args, timeout: float = 60) -> str:
        cmd = [str(self.bindir / name), *args]
        if self.os_user:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(self.dir),
                              check=False)
        if proc.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
            raise PgClusterError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}\n{log}")
        return proc.stdout

    def params(self, dbname: str = "postgres") -> dict:
        """psycopg2 / libpq parameters of the role, over TCP."""
        return {"host": self.host, "port": str(self.port), "user": self.user, "password": self.password,
                "dbname": dbname}

    # -- life cycle ----------------------------------------------------------------------------

    def init(self):
        self.dir = Path(tempfile.mkdtemp(prefix="ocore_pgcluster_"))
        self.socket_dir.mkdir()
        if self.os_user:
            try:
                entry = pwd.getpwnam(self.os_user)
            except KeyError:
                raise PgClusterError(f"running as root but there is no {self.os_user!r} OS user to run "
                                     "PostgreSQL as (the Debian postgresql package creates it)") from None
            for path in (self.dir, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions")
        conf = {**self.settings, "listen_addresses": f"'{self.host}'", "port": str(self.port),
                "unix_socket_directories": f"'{self.socket_dir}'", "logging_collector": "off"}
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write("\n# PgCluster\n" + "".join(f"{k} = {v}\n" for k, v in conf.items()))
        return self

    def start(self, timeout: int = 30):
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", str(timeout), "start",
                  timeout=timeout + 10)
        return self

    def stop(self, mode: str = "fast", timeout: int = 30):
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(timeout), "stop", timeout=timeout + 10)

    def restart(self, mode: str = "fast", timeout: int = 30):
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-m", mode, "-w", "-t", str(timeout),
                  "restart", timeout=timeout + 10)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_role(self):
        """The login role with CREATEDB (over the unix socket, as the superuser)."""
        import psycopg2
        from psycopg2 import sql

        conn = psycopg2.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cr:
                cr.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD %s").format(sql.Identifier(self.user)),
                           (self.password,))
        finally:
            conn.close()

    def cleanup(self):
        if self.dir is None:
            return
        try:
            if self.running():
                with contextlib.suppress(PgClusterError, subprocess.SubprocessError):
                    self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        try:
            self.init()
            self.start()
            self.create_role()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc):
        self.cleanup()
