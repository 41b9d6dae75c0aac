"""What every benchmark starts from: a real Odoo server on a fresh database with partners and a key."""

import contextlib
import os
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


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """(own CPU, CPU of its reaped children, start time) of process ``pid``, from /proc/<pid>/stat: utime + stime
    and cutime + cstime in seconds (every thread of the process, the dead ones included), the start time in
    clock ticks since boot (a pid and its start time name one process, whatever pid reuse). None once gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    except (FileNotFoundError, ProcessLookupError):
        return None
    return ((int(fields[11]) + int(fields[12])) / CLOCK_TICKS, (int(fields[13]) + int(fields[14])) / CLOCK_TICKS,
            int(fields[19]))


def process_tree(pid):
    """``pid`` and all its descendants (the children of each of its threads, recursively), as they are now."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
            except FileNotFoundError:
                pass
    return pids


def client_cpu():
    """CPU time (user + system, every thread) of this process so far, in seconds."""
    times = os.times()
    return times.user + times.system


def _cpu_by_process(pids):
    """{(pid, start time): proc_cpu(pid)} of those of ``pids`` still running."""
    found = {}
    for pid in pids:
        times = proc_cpu(pid)
        if times:
            found[pid, times[2]] = times
    return found


class ServerCpu:
    """The CPU time a server on this machine spends between two snapshots: the Odoo process tree under
    ``root_pid`` (prefork master, HTTP workers, gevent worker) and the PostgreSQL backends connected to ``db``
    (pids from pg_stat_activity, read through one connection to the ``postgres`` database, so not counted).

    Odoo: the tree's total is, over its live processes, their own CPU plus that of their reaped children, so
    a worker recycled between two snapshots still counts (its CPU moves into the master's cutime when the
    master reaps it). PostgreSQL: a backend seen in both snapshots counts its difference, one that appeared
    counts all its CPU, one that vanished counts nothing after the first snapshot (counted in ``lost``)."""

    def __init__(self, setup, db, root_pid):
        self.db = db
        self.root_pid = root_pid
        self.pg = harness.pg_connect(setup, "postgres")

    def close(self):
        self.pg.close()

    def snapshot(self):
        with self.pg.cursor() as cr:
            cr.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.db,))
            backends = [pid for (pid,) in cr.fetchall()]
        return _cpu_by_process(process_tree(self.root_pid)), _cpu_by_process(backends)

    @staticmethod
    def between(before, after):
        """{odoo, pg: seconds of CPU; odoo_gone, pg_lost: processes that vanished in between; clamped: 1 if a
        negative Odoo difference (a worker reaped between reading it and its parent) was counted as 0}."""
        (odoo0, pg0), (odoo1, pg1) = before, after
        odoo = sum(own + reaped for own, reaped, _ in odoo1.values()) \
            - sum(own + reaped for own, reaped, _ in odoo0.values())
        pg = 0.0
        for key, (own, _, _) in pg1.items():
            pg += max(0.0, own - pg0[key][0]) if key in pg0 else own
        return {"odoo": max(0.0, odoo), "pg": pg, "clamped": int(odoo < 0),
                "odoo_gone": len(odoo0.keys() - odoo1.keys()), "pg_lost": len(pg0.keys() - pg1.keys())}
