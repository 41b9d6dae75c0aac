"""What every benchmark starts from: a real Odoo server on a fresh database with partners and a key."""

import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import harness  # noqa: E402


@contextlib.contextmanager
def bench_server(suffix, addons=("ocore_mcp",), partners=80, keep=False, label="Bench", **server_kw):
    """(setup, db, server, admin, key): a fresh database ``<name>_<suffix>`` with ``addons`` and ``partners``
    partners named "<label> Partner <i>", an Odoo server on it (``server_kw``: mode, workers) and an API key of
    the administrator with a rate limit no benchmark reaches. The database is dropped afterwards unless
    ``keep``."""
    setup = harness.OdooSetup.from_env()
    db = f"{harness.new_db_name()}_{suffix}"
    print(f"creating database {db} ...", flush=True)
    harness.create_database(setup, db, addons=addons)
    server = harness.OdooServer(setup, db, **server_kw)
    try:
        server.start()
        admin = harness.Admin(server.url, db)
        for i in range(partners):
            admin.create("res.partner", {"name": f"{label} Partner {i}", "email": f"{label[0].lower()}{i}@example.com",
                                         "city": "Brussels", "is_company": i % 3 == 0})
        key = admin.create_key(name=f"{label.lower()} {suffix}", rate_limit=100000)
        yield setup, db, server, admin, key
    finally:
        server.stop()
        if not keep:
            harness.drop_database(setup, db)
