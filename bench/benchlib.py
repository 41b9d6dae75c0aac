"""What every benchmark starts from: a real Odoo server on a fresh database with partners and a key."""

import contextlib
import sys
import time
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


def time_paths(paths, calls, warmup=10):
    """{name: [ms per call]} of each path of ``paths`` ({name: callable}), called ``calls`` times in turn after
    ``warmup`` rounds (interleaved, so that a passing load weighs on every path alike)."""
    timings = {name: [] for name in paths}
    for _ in range(warmup):
        for fn in paths.values():
            fn()
    for _ in range(calls):
        for name, fn in paths.items():
            started = time.perf_counter()
            fn()
            timings[name].append((time.perf_counter() - started) * 1000)
    return timings
