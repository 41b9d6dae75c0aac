"""End-to-end harness: a real Odoo server on a fresh database, and an admin XML-RPC helper.

Nothing here knows where the workspace is: the repository is derived from this file and
Odoo / PostgreSQL come from the environment that ``setup/test`` exports:

    OCORE_ODOO_BIN      odoo-bin                       (default /opt/odoo/18.0/odoo-bin)
    OCORE_ODOO_PYTHON   python of Odoo's virtualenv    (default <repo>/.venv/bin/python)
    OCORE_ODOO_CONF     Odoo configuration file        (default <repo>/.local/odoo.conf)
    OCORE_REPO          the addons repository          (default: the parent of tests/)
    PGHOST, PGPORT, PGUSER, PGPASSWORD  (default: db_host, db_port, ... of the configuration)
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
REPO = Path(os.environ.get("OCORE_REPO") or TESTS_DIR.parent).resolve()
TEST_ADDONS_DIR = TESTS_DIR / "addons"
ARTIFACTS = TESTS_DIR / "artifacts"

MAIN_ADDON = "ocore_mcp"
TEST_ADDON = "ocore_mcp_test_extension"
ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "admin"  # the password of "admin" in a fresh database (demo data or not)
DB_PREFIX = "ocore_e2e_"


def slug_of(dbname: str) -> str:
    """The default instance slug: the database name lower-cased, non-alphanumerics -> '_'."""
    return re.sub(r"[^a-z0-9]+", "_", dbname.lower()).strip("_") or "odoo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 80) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class HarnessError(RuntimeError):
    pass


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


# -- configuration -------------------------------------------------------------------------


@dataclass
class OdooSetup:
    """Where Odoo is and how to reach PostgreSQL."""

    odoo_bin: Path
    python: Path
    conf: Path
    repo: Path = REPO
    options: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> OdooSetup:
        env = os.environ
        setup = cls(
            odoo_bin=Path(env.get("OCORE_ODOO_BIN") or "/opt/odoo/18.0/odoo-bin"),
            python=Path(env.get("OCORE_ODOO_PYTHON") or REPO / ".venv" / "bin" / "python"),
            conf=Path(env.get("OCORE_ODOO_CONF") or REPO / ".local" / "odoo.conf"),
        )
        missing = [f"{name}={path}" for name, path in
                   (("OCORE_ODOO_BIN", setup.odoo_bin), ("OCORE_ODOO_PYTHON", setup.python),
                    ("OCORE_ODOO_CONF", setup.conf)) if not path.exists()]
        if missing:
            raise HarnessError(
                "the end-to-end suite needs Odoo; not found: " + ", ".join(missing)
                + ". Run it through setup/test (which prepares and exports them) or set these variables."
            )
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(setup.conf)
        setup.options = dict(parser["options"]) if parser.has_section("options") else {}
        return setup

    def conf_value(self, name):
        value = self.options.get(name)
        return None if value in (None, "", "False", "None") else value

    def odoo_addons_dirs(self) -> list[str]:
        """The addons directories of the configuration, without this repository."""
        dirs = []
        for item in (self.conf_value("addons_path") or "").split(","):
            item = item.strip()
            if not item:
                continue
            path = Path(item).resolve()
            if path in (self.repo, TEST_ADDONS_DIR) or not path.is_dir():
                continue
            dirs.append(str(path))
        if not dirs:  # a conf without Odoo's own addons: take them from the source tree
            root = self.odoo_bin.resolve().parent
            dirs = [str(p) for p in (root / "addons", root / "odoo" / "addons") if p.is_dir()]
        return dirs

    def addons_path(self) -> str:
        return ",".join([str(self.repo), str(TEST_ADDONS_DIR), *self.odoo_addons_dirs()])

    def process_env(self) -> dict:
        env = dict(os.environ)
        # Odoo re-executes basename(sys.executable) on reload: the venv's bin must come first.
        env["PATH"] = f"{self.python.parent}{os.pathsep}{env.get('PATH', '')}"
        env.pop("PYTHONPATH", None)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def pg_params(self, dbname="postgres") -> dict:
        env = os.environ
        params = {
            "dbname": dbname,
            "host": env.get("PGHOST") or self.conf_value("db_host"),
            "port": env.get("PGPORT") or self.conf_value("db_port"),
            "user": env.get("PGUSER") or self.conf_value("db_user"),
            "password": env.get("PGPASSWORD") or self.conf_value("db_password"),
        }
        return {k: v for k, v in params.items() if v}

    def data_dir(self) -> Path | None:
        value = self.conf_value("data_dir")
        return Path(value) if value else None

    def odoo_cmd(self, *args) -> list[str]:
        return [str(self.python), str(self.odoo_bin), "-c", str(self.conf), *args]


# -- PostgreSQL ------------------------------------------------------------------------------


def pg_connect(setup: OdooSetup, dbname="postgres"):
    import psycopg2

    conn = psycopg2.connect(**setup.pg_params(dbname))
    conn.autocommit = True
    return conn


def pg_query(setup: OdooSetup, dbname: str, sql: str, params=()):
    conn = pg_connect(setup, dbname)
    try:
        with conn.cursor() as cr:
            cr.execute(sql, params)
            return cr.fetchall() if cr.description else None
    finally:
        conn.close()


def drop_database(setup: OdooSetup, dbname: str, attempts: int = 30):
    """Drop a database of the suite and its files. Retried: after a load, PostgreSQL's autovacuum may
    visit the database, and DROP DATABASE ... WITH (FORCE) cannot end that worker for a role that is
    not a superuser ("must be a member of the role whose process is being terminated")."""
    import psycopg2

    if not dbname.startswith(DB_PREFIX):
        raise HarnessError(f"refusing to drop {dbname!r}: not a database of this suite")
    for attempt in range(attempts):
        try:
            pg_query(setup, "postgres", f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            break
        except psycopg2.Error:
            if attempt == attempts - 1:
                raise
            time.sleep(1)
    data_dir = setup.data_dir()
    if data_dir:
        shutil.rmtree(data_dir / "filestore" / dbname, ignore_errors=True)
    shutil.rmtree(ARTIFACTS / "custom_addons" / dbname, ignore_errors=True)  # OdooServer.custom_addons


def create_database(setup: OdooSetup, dbname: str, addons=(MAIN_ADDON, TEST_ADDON), log_path: Path | None = None):
    """Create ``dbname`` and install ``addons`` in it (odoo-bin -i ... --stop-after-init)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = log_path or ARTIFACTS / f"{dbname}-install.log"
    cmd = setup.odoo_cmd(
        "-d", dbname, "-i", ",".join(addons), "--stop-after-init", "--without-demo=all",
        f"--addons-path={setup.addons_path()}", "--max-cron-threads=0", "--http-port", str(free_port()),
        "--db-filter", f"^{re.escape(dbname)}$",
    )
    started = time.monotonic()
    with open(log_path, "wb") as log:
        log.write((" ".join(cmd) + "\n").encode())
        log.flush()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=setup.process_env(),
                              cwd=str(setup.repo), timeout=900, check=False)
    states = dict(pg_query(setup, dbname, "SELECT name, state FROM ir_module_module WHERE name = ANY(%s)",
                           (list(addons),)) or []) if _db_exists(setup, dbname) else {}
    bad = {a: states.get(a, "missing") for a in addons if states.get(a) != "installed"}
    if proc.returncode != 0 or bad:
        raise HarnessError(
            f"installing {', '.join(addons)} into {dbname} failed (exit code {proc.returncode}, module states "
            f"{bad or states}) after {time.monotonic() - started:.0f}s; log {log_path}:\n{tail(log_path, 60)}"
        )
    return log_path


def _db_exists(setup, dbname):
    return bool(pg_query(setup, "postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)))


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
            "--max-cron-threads=0", "--without-demo=all",
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


# -- the reverse proxy ------------------------------------------------------------------------

NGINX_TEMPLATE = REPO / "deploy" / "nginx" / "ocore-mcp.conf"


class NginxProxy:
    """nginx in front of a prefork ``OdooServer``, with the repository's own proxy configuration
    (``deploy/nginx/ocore-mcp.conf``, what admins copy): only the upstream addresses and the listen
    line are replaced. Everything it writes (configuration, logs, pid, temp files) is under
    ``tests/artifacts``; nginx runs in the foreground as a child of the tests."""

    def __init__(self, server: OdooServer, nginx_bin: str | None = None):
        if server.gevent_port is None:
            raise HarnessError("the proxy needs a prefork server (HTTP workers and a gevent port)")
        self.server = server
        self.nginx = nginx_bin or shutil.which("nginx") or "/usr/sbin/nginx"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = ARTIFACTS / f"nginx-{server.db}-{self.port}"
        self.conf_path = self.dir / "nginx.conf"
        self.error_log = self.dir / "error.log"
        self.access_log = self.dir / "access.log"
        self.proc: subprocess.Popen | None = None

    def render(self) -> str:
        """The site configuration: the template with this server's ports."""
        text = NGINX_TEMPLATE.read_text()
        for old, new in (("127.0.0.1:8069;", f"127.0.0.1:{self.server.port};"),
                         ("127.0.0.1:8072;", f"127.0.0.1:{self.server.gevent_port};"),
                         ("listen 80;", f"listen 127.0.0.1:{self.port};")):
            if text.count(old) != 1:
                raise HarnessError(f"{NGINX_TEMPLATE.name}: expected exactly one {old!r} to replace")
            text = text.replace(old, new)
        return text

    def write_config(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "ocore-mcp.conf").write_text(self.render())
        temp = {name: self.dir / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir(exist_ok=True)
        self.conf_path.write_text(f"""worker_processes 1;
error_log {self.error_log} info;
events {{ worker_connections 512; }}
http {{
    log_format ocore_upstream '$request_method $uri $status upstream=$upstream_addr';
    access_log {self.access_log} ocore_upstream;
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {self.dir / "ocore-mcp.conf"};
}}
""")

    def command(self) -> list[str]:
        return [self.nginx, "-p", str(self.dir), "-c", str(self.conf_path),
                "-g", f"daemon off; pid {self.dir / 'nginx.pid'};"]

    def start(self, timeout: float = 20):
        if not Path(self.nginx).exists():
            raise HarnessError(f"nginx not found ({self.nginx}); setup/test installs the Debian package")
        self.write_config()
        log = open(self.dir / "stderr.log", "wb")  # noqa: SIM115 - kept by the child
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"nginx exited with code {self.proc.returncode}:\n{tail(self.dir / 'stderr.log')}"
                                   f"\n{tail(self.error_log)}")
            try:
                with urllib.request.urlopen(f"{self.url}/web/health", timeout=5) as resp:  # noqa: S310
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise HarnessError(f"nginx on {self.url} did not answer within {timeout}s:\n{tail(self.error_log)}")

    def stop(self, timeout: float = 10):
        if self.proc is not None:
            stop_process_group(self.proc, timeout)

    def access_log_lines(self) -> list[str]:
        try:
            return self.access_log.read_text(errors="replace").splitlines()
        except OSError:
            return []


# -- admin XML-RPC ----------------------------------------------------------------------------


@dataclass
class Key:
    id: int
    secret: str
    name: str
    user_id: int

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.secret}"}


class RpcFault(xmlrpc.client.Fault):
    """An error raised by the server on an admin call: ``faultString`` holds its message (and the
    server traceback). A ``xmlrpc.client.Fault``, whichever way the call went."""

    def __init__(self, message, data=None):
        self.data = data or {}
        self.message = message or ""
        debug = self.data.get("debug") or ""
        super().__init__(1, f"{self.message}\n{debug}".strip())

    def __str__(self):
        return self.message


class Admin:
    """The administrator, doing what the backend UI does.

    The login is checked over XML-RPC (``/xmlrpc/2/common`` authenticate, as a script would); the
    calls then go through a web session (JSON-RPC ``/web/dataset/call_kw``, as the UI does): unlike
    XML-RPC, a session does not re-verify the password hash (~1 s) after every cache invalidation,
    and tests change settings often.
    """

    def __init__(self, url: str, db: str, login: str = ADMIN_LOGIN, password: str = ADMIN_PASSWORD):
        import httpx2

        self.url = url
        self.db = db
        self.password = password
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common", allow_none=True)
        self.uid = common.authenticate(db, login, password, {})
        if not self.uid:
            raise HarnessError(f"XML-RPC login {login}/{password} on {db} failed")
        self.http = httpx2.Client(base_url=url, timeout=60)
        result = self._jsonrpc("/web/session/authenticate", {"db": db, "login": login, "password": password})
        if result.get("uid") != self.uid:
            raise HarnessError(f"web login {login} on {db} failed: {result}")

    def _jsonrpc(self, path, params):
        resp = self.http.post(path, json={"jsonrpc": "2.0", "method": "call", "id": 1, "params": params})
        resp.raise_for_status()
        body = resp.json()
        if "error" in body:
            data = body["error"].get("data") or {}
            raise RpcFault(data.get("message") or body["error"].get("message"), data)
        return body["result"]

    def call(self, model: str, method: str, *args, **kwargs):
        return self._jsonrpc(f"/web/dataset/call_kw/{model}/{method}",
                             {"model": model, "method": method, "args": list(args), "kwargs": kwargs})

    def xmlrpc(self, model: str, method: str, *args, **kwargs):
        """The same call over XML-RPC (``/xmlrpc/2/object``)."""
        proxy = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/object", allow_none=True)
        return proxy.execute_kw(self.db, self.uid, self.password, model, method, list(args), kwargs)

    # generic helpers
    def search_read(self, model, domain=(), fields=(), **kw):
        return self.call(model, "search_read", list(domain), list(fields), **kw)

    def create(self, model, values) -> int:
        return self.call(model, "create", values)

    def write(self, model, ids, values):
        return self.call(model, "write", list(ids) if isinstance(ids, list | tuple) else [ids], values)

    def ref(self, xmlid: str) -> int:
        module, name = xmlid.split(".", 1)
        rows = self.search_read("ir.model.data", [("module", "=", module), ("name", "=", name)], ["res_id"])
        if not rows:
            raise HarnessError(f"no record {xmlid}")
        return rows[0]["res_id"]

    # settings (ir.config_parameter ocore_mcp.*)
    def set_param(self, name: str, value):
        """Set a system parameter; ``None`` removes it (back to the default)."""
        return self.call("ir.config_parameter", "set_param", name, False if value is None else str(value))

    def get_param(self, name: str, default=None):
        value = self.call("ir.config_parameter", "get_param", name)
        return default if value is False else value

    @contextlib.contextmanager
    def params(self, prefix="ocore_mcp", **values):
        """Temporarily set ``<prefix>.<name>`` parameters; restore the previous values after."""
        previous = {name: self.get_param(f"{prefix}.{name}") for name in values}
        try:
            for name, value in values.items():
                self.set_param(f"{prefix}.{name}", value)
            yield
        finally:
            for name, value in previous.items():
                self.set_param(f"{prefix}.{name}", value)

    # users and companies
    def create_user(self, login: str, groups=("ocore_mcp.group_mcp_user",), company_ids=None, **values) -> int:
        group_ids = [self.ref("base.group_user")] + [self.ref(g) for g in groups]
        vals = {"name": values.pop("name", login), "login": login, "groups_id": [(6, 0, group_ids)], **values}
        if company_ids:
            vals["company_ids"] = [(6, 0, list(company_ids))]
            vals.setdefault("company_id", company_ids[0])
        return self.create("res.users", vals)

    # API keys
    def create_key(
        self,
        name: str | None = None,
        user_id: int | None = None,
        categories=(),
        read_only: bool = False,
        tool_allowlist=None,
        tool_denylist=None,
        models=(),
        ip_allowlist=None,
        rate_limit: int = 0,
        expiration_date: str | None = None,
        active: bool = True,
        **extra,
    ) -> Key:
        """Create a key like the UI does (form + "Generate secret" button) and return it with its secret."""
        name = name or f"e2e key {secrets.token_hex(3)}"
        vals = {"name": name, "read_only": read_only, "rate_limit": rate_limit, **extra}
        if user_id:
            vals["user_id"] = user_id
        if categories:
            cat_ids = [r["id"] for r in self.search_read("ocore.mcp.category", [("code", "in", list(categories))],
                                                         ["code"])]
            if len(cat_ids) != len(set(categories)):
                raise HarnessError(f"unknown MCP categories in {categories}")
            vals["category_ids"] = [(6, 0, cat_ids)]
        if models:
            model_ids = [r["id"] for r in self.search_read("ir.model", [("model", "in", list(models))], ["model"])]
            if len(model_ids) != len(set(models)):
                raise HarnessError(f"unknown models in {models}")
            vals["model_ids"] = [(6, 0, model_ids)]
        for fname, value in (("tool_allowlist", tool_allowlist), ("tool_denylist", tool_denylist),
                             ("ip_allowlist", ip_allowlist)):
            if value:
                vals[fname] = value if isinstance(value, str) else ",".join(value)
        if expiration_date:
            vals["expiration_date"] = expiration_date
        key_id = self.create("ocore.mcp.key", vals)
        action = self.call("ocore.mcp.key", "action_generate_secret", [key_id])
        if not isinstance(action, dict) or action.get("res_model") != "ocore.mcp.key.show":
            raise HarnessError(f"action_generate_secret returned {action!r}")
        secret = action["context"]["default_secret"]  # shown from the action only: stored nowhere
        if not active:
            self.write("ocore.mcp.key", [key_id], {"active": False})
        owner = self.search_read("ocore.mcp.key", [("id", "=", key_id), ("active", "in", [True, False])],
                                 ["user_id"])[0]["user_id"][0]
        return Key(id=key_id, secret=secret, name=name, user_id=owner)

    def revoke_key(self, key: Key | int):
        key_id = key.id if isinstance(key, Key) else key
        # what the "Revoke" button (action_revoke) does; the button itself returns None,
        # which XML-RPC cannot marshal
        return self.write("ocore.mcp.key", [key_id], {"active": False})

    # audit log
    AUDIT_FIELDS = (
        "event", "tool_name", "tool", "category", "params", "result_summary", "status", "success",
        "error_message", "refusal_reason", "latency_ms", "session_id", "request_id", "key_id", "user_id",
        "company_id", "ip_address", "client_name", "protocol_version", "transport", "dry_run",
    )

    def audit(self, domain=(), limit=50, order="id desc", fields=AUDIT_FIELDS):
        return self.search_read("ocore.mcp.audit.log", list(domain), list(fields), limit=limit, order=order)

    def wait_audit(self, domain, predicate=None, timeout: float = 15, count: int = 1):
        """Poll the audit log until ``count`` rows match ``domain`` (and ``predicate``); return them."""
        deadline = time.monotonic() + timeout
        rows = []
        while True:
            rows = [r for r in self.audit(domain) if predicate is None or predicate(r)]
            if len(rows) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if len(rows) < count:
            raise AssertionError(
                f"expected {count} audit row(s) for {domain} within {timeout}s, found {len(rows)}: "
                f"{self.audit(domain, limit=5)}"
            )
        return rows

    def sessions(self, domain=(), fields=("session_id", "key_id", "transport", "protocol_version", "log_level",
                                          "ended_at", "end_reason", "client_name", "instances_filter",
                                          "categories_filter")):
        return self.search_read("ocore.mcp.session", list(domain), list(fields), order="id desc")


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


def new_db_name() -> str:
    return f"{DB_PREFIX}{time.strftime('%m%d%H%M%S')}_{secrets.token_hex(3)}"


def main(argv=None):
    """Manual use: ``python tests/harness.py [threaded|prefork]`` starts a server and waits."""
    mode = (argv or sys.argv[1:] or ["threaded"])[0]

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    setup = OdooSetup.from_env()
    db = new_db_name()
    print(f"creating {db} ...", flush=True)
    create_database(setup, db)
    server = OdooServer(setup, db, mode).start()
    print(f"{server.url} ({mode}), database {db}; Ctrl-C stops and drops it", flush=True)
    try:
        while server.proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        drop_database(setup, db)


if __name__ == "__main__":
    main()
