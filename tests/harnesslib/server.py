"""The Odoo server under test (threaded or prefork) and ``own_server``, a server on a database of its own."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from .admin import Admin
from .config import ARTIFACTS, MAIN_ADDON, TEST_ADDON, HarnessError, OdooSetup, free_port, slug_of, tail
from .pg import create_database, drop_database, new_db_name


def stop_process_group(proc: subprocess.Popen, timeout: float):
    """SIGTERM the process group of ``proc`` (started with start_new_session), SIGKILL it after ``timeout``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


# -- the server -------------------------------------------------------------------------------


class OdooServer:
    """``odoo-bin`` serving one database, in threaded (default) or prefork mode."""

    def __init__(self, setup: OdooSetup, dbname: str, mode: str = "threaded", workers: int = 2,
                 extra_args: tuple = ()):
        if mode not in ("threaded", "prefork"):
            raise ValueError(f"mode must be 'threaded' or 'prefork', not {mode!r}")
        self.setup = setup
        self.db = dbname
        self.mode = mode
        self.workers = workers
        self.extra_args = tuple(extra_args)  # more odoo-bin options, e.g. ("--proxy-mode",)
        self.port = free_port()
        self.gevent_port = free_port() if mode == "prefork" else None
        self.url = f"http://127.0.0.1:{self.port}"
        # where long-lived streams are served: the gevent port in prefork mode (a reverse proxy routes
        # them there, see README "Deployment"), the one HTTP port otherwise
        self.stream_url = f"http://127.0.0.1:{self.gevent_port}" if self.gevent_port else self.url
        self.log_path = ARTIFACTS / f"{dbname}-server-{mode}.log"
        # a custom addons directory of this server (on its addons path): the file tools' root in the
        # suite, where scaffold_module writes modules that install_module then installs
        self.custom_addons = ARTIFACTS / "custom_addons" / dbname
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def slug(self) -> str:
        return slug_of(self.db)

    def command(self) -> list[str]:
        args = [
            # one database and no dbfilter, as setup/run configures Odoo: with a dbfilter Odoo lists the
            # databases (a new PostgreSQL connection) on every request without a session cookie
            "-d", self.db,
            f"--addons-path={self.setup.addons_path()},{self.custom_addons}",
            "--http-interface", "127.0.0.1", "--http-port", str(self.port),
            "--max-cron-threads=0", "--without-demo=True",
        ]
        if self.mode == "prefork":
            args += [f"--workers={self.workers}", "--gevent-port", str(self.gevent_port)]
        else:
            args += ["--workers=0"]
        return self.setup.odoo_cmd(*args, *self.extra_args)

    def make_custom_addons(self):
        """Create the custom addons directory; Odoo accepts an addons path entry holding one module."""
        placeholder = self.custom_addons / "ocore_e2e_placeholder"
        placeholder.mkdir(parents=True, exist_ok=True)
        (placeholder / "__init__.py").write_text("")
        (placeholder / "__manifest__.py").write_text(
            '{"name": "e2e placeholder", "version": "1.0", "license": "LGPL-3", "installable": False}\n'
        )

    def start(self, timeout: float = 90):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.make_custom_addons()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        cmd = self.command()
        self._log.write((" ".join(cmd) + "\n").encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=self.setup.process_env(),
            cwd=str(self.setup.repo), start_new_session=True,
        )
        self.wait_healthy(timeout)
        self.wait_stream_port(timeout)  # prefork: the gevent worker starts after the HTTP workers
        return self

    def wait_healthy(self, timeout: float = 90):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(
                    f"Odoo exited with code {self.proc.returncode} before it was healthy; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/web/health", timeout=5) as resp:  # noqa: S310 - http URL built here
                    body = json.loads(resp.read() or b"{}")
                    if resp.status == 200 and body.get("status") == "pass":
                        return
                    last = f"HTTP {resp.status} {body}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise HarnessError(f"Odoo not healthy after {timeout}s ({last}); log {self.log_path}:\n{self.log_tail()}")

    def wait_stream_port(self, timeout: float = 60):
        """Prefork: wait until the gevent worker answers too. It starts after the HTTP workers, so a
        healthy HTTP port does not mean the long-lived streams can be served yet."""
        if not self.gevent_port:
            return
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"Odoo exited with code {self.proc.returncode}; log {self.log_path}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.stream_url}/web/health", timeout=5) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except (urllib.error.URLError, OSError) as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise HarnessError(f"the gevent port {self.gevent_port} not healthy after {timeout}s ({last}); "
                           f"log {self.log_path}:\n{self.log_tail()}")

    def stop(self, timeout: float = 15):
        if self.proc is None:
            return
        stop_process_group(self.proc, timeout)
        if self._log:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 80) -> str:
        if self._log:
            self._log.flush()
        return tail(self.log_path, lines)

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        if self._log:
            self._log.flush()
        with open(self.log_path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")


@contextlib.contextmanager
def own_server(config, setup: OdooSetup, addons=(MAIN_ADDON, TEST_ADDON), rate_limit: int | None = None,
               **server_options):
    """A server on a fresh database of its own, for the session or a test module: the database is
    created with ``addons``, the server started (``server.admin`` ready, the instance rate limit set
    when given), its log attached to failing tests while it serves, and at the end it is stopped and
    its database dropped (kept with --keep-db)."""
    db = new_db_name()
    server = OdooServer(setup, db, **server_options)
    keep = config.getoption("--keep-db")
    try:
        create_database(setup, db, addons=addons)
        server.start()
        server.admin = Admin(server.url, db)
        if rate_limit:
            server.admin.set_param("ocore_mcp.rate_limit", rate_limit)
    except BaseException:
        server.stop()
        if not keep:
            drop_database(setup, db)
        raise
    previous = getattr(config, "_ocore_server", None)
    config._ocore_server = server  # its log is attached to failing tests
    try:
        yield server
    finally:
        config._ocore_server = previous
        server.stop()
        if keep:
            print(f"\nkept database {db} (server log {server.log_path})")
        else:
            drop_database(setup, db)
