"""PostgreSQL: connections, queries, and the suite's databases (created with the addons installed, dropped)."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from .config import ARTIFACTS, DB_PREFIX, MAIN_ADDON, TEST_ADDON, HarnessError, OdooSetup, free_port, tail


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
        "-d", dbname, "-i", ",".join(addons), "--stop-after-init", "--without-demo=True",
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


def new_db_name() -> str:
    return f"{DB_PREFIX}{time.strftime('%m%d%H%M%S')}_{secrets.token_hex(3)}"
