"""End-to-end harness: a real Odoo server on a fresh database, and an admin XML-RPC helper.

One module per concern in ``harnesslib/``: ``config`` (Odoo set-up: paths, series, configuration),
``pg`` (PostgreSQL, the suite's databases), ``server`` (the Odoo server), ``nginx`` (the reverse proxy),
``admin`` (the administrator over XML-RPC / the web session); this module re-exports them and is the CLI.

Nothing here knows where the workspace is: the repository is derived from this file and
Odoo / PostgreSQL come from the environment that ``setup/test`` exports:

    OCORE_ODOO_PATH     the Odoo source tree, 17.0, 18.0 or 19.0 (default: the tree of OCORE_ODOO_BIN)
    OCORE_ODOO_BIN      its launcher: odoo-bin, or setup/odoo in 19.0 (default /opt/odoo/18.0/odoo-bin)
    OCORE_ODOO_PYTHON   python of Odoo's virtualenv    (default <repo>/.venv/bin/python)
    OCORE_ODOO_CONF     Odoo configuration file        (default <repo>/.local/odoo.conf)
    OCORE_REPO          the addons repository          (default: the parent of tests/)
    PGHOST, PGPORT, PGUSER, PGPASSWORD  (default: db_host, db_port, ... of the configuration)
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harnesslib.admin import Admin, Key, RpcFault  # noqa: E402
from harnesslib.config import (  # noqa: E402
    ADMIN_LOGIN,
    ADMIN_PASSWORD,
    ARTIFACTS,
    DB_PREFIX,
    MAIN_ADDON,
    REPO,
    TEST_ADDON,
    TEST_ADDONS_DIR,
    TESTS_DIR,
    HarnessError,
    OdooSetup,
    free_port,
    odoo_series,
    odoo_tree,
    slug_of,
    tail,
)
from harnesslib.nginx import NGINX_TEMPLATE, NginxProxy  # noqa: E402
from harnesslib.pg import create_database, drop_database, new_db_name, pg_connect, pg_query  # noqa: E402
from harnesslib.server import OdooServer, own_server, stop_process_group  # noqa: E402

__all__ = [
    "ADMIN_LOGIN", "ADMIN_PASSWORD", "ARTIFACTS", "DB_PREFIX", "MAIN_ADDON", "NGINX_TEMPLATE", "REPO", "TESTS_DIR",
    "TEST_ADDON", "TEST_ADDONS_DIR", "Admin", "HarnessError", "Key", "NginxProxy", "OdooServer", "OdooSetup",
    "RpcFault", "create_database", "drop_database", "free_port", "new_db_name", "odoo_series", "odoo_tree",
    "own_server", "pg_connect", "pg_query", "slug_of", "stop_process_group", "tail",
]


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
