"""setup/run and setup/test: what a new user gets by default, and the prepare lock.

- ``OCORE_ADDONS`` defaults to every product addon (server, Knowledge Layer, OAuth); ``OCORE_ADDONS=ocore_mcp``
  is the lean install.
- A PostgreSQL started by setup/lib.sh while the prepare lock is held does not inherit the lock's file
  descriptor: a second setup/run right after the first (which started the server) takes the lock at once
  instead of waiting as long as PostgreSQL lives. The machine's own cluster is never touched: a private
  cluster (tests/pgcluster.py) stands in for the stopped local one, started through setup/lib.sh's own
  ``_ocore_pg_local`` with ``pg_lsclusters``/``pg_ctlcluster`` shims that report it down and start it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIB = REPO / "setup" / "lib.sh"
PRODUCT_ADDONS = {"ocore_mcp", "ocore_mcp_knowledge", "ocore_mcp_oauth"}


def bash(script: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OCORE_", "PG"))}
    full_env.update(env or {})
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=timeout, env=full_env,
                          stdin=subprocess.DEVNULL, check=False)


def test_every_product_addon_by_default():
    out = bash(f"source {LIB}; echo \"$OCORE_ADDONS\"")
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.strip().split(",")) == PRODUCT_ADDONS
    # every product addon of the repository (an addon with "ocore_mcp" in its dependencies or the server itself)
    found = {p.parent.name for p in REPO.glob("ocore_mcp*/__manifest__.py")}
    assert found == PRODUCT_ADDONS


def test_lean_install_is_one_variable_away():
    out = bash(f"source {LIB}; echo \"$OCORE_ADDONS\"", env={"OCORE_ADDONS": "ocore_mcp"})
    assert out.stdout.strip() == "ocore_mcp"


def test_setup_run_installs_what_ocore_addons_names():
    text = (REPO / "setup" / "run").read_text()
    assert re.search(r'read -ra wanted <<<"\$OCORE_ADDONS"', text)


# -- the prepare lock and the PostgreSQL it starts ---------------------------------------------------------------

needs_pg = pytest.mark.skipif(not (shutil.which("flock") and os.geteuid() == 0),
                              reason="needs flock and root (setup/lib.sh starts the local cluster as root)")


def _shims(bindir: Path, cluster, log: Path):
    """pg_lsclusters reports the private cluster down until its postmaster runs; pg_ctlcluster starts it the
    way Debian's does (pg_ctl forks a daemon that inherits the caller's descriptors); psql answers."""
    major = cluster.bindir.parent.name
    pg_ctl = f"runuser -u {cluster.os_user} -- {cluster.bindir}/pg_ctl" if cluster.os_user else \
        f"{cluster.bindir}/pg_ctl"
    bindir.mkdir()
    scripts = {
        "pg_lsclusters": f"""#!/bin/bash
if [[ -f {cluster.data}/postmaster.pid ]]; then s=online; else s=down; fi
echo "{major} main {cluster.port} $s postgres {cluster.data} {log}"
""",
        "pg_ctlcluster": f"""#!/bin/bash
[[ $3 == start ]] || exit 2
cd {cluster.dir} && {pg_ctl} -D {cluster.data} -l {cluster.log_path} -w -t 30 start >/dev/null
""",
        "psql": "#!/bin/bash\nexit 0\n",
    }
    for name, body in scripts.items():
        (bindir / name).write_text(body)
        (bindir / name).chmod(0o755)


def _first_run(tmp_path: Path, lib: Path, cluster) -> subprocess.CompletedProcess:
    """The preparation part of a first setup/run: take the lock, start the (stopped) local cluster, release."""
    local = tmp_path / "local"
    _shims(tmp_path / "bin", cluster, tmp_path / "pg.log")
    script = f"""set -e
source {lib}
OCORE_LOCAL={local}
ocore_lock
_ocore_pg_local
ocore_unlock
"""
    return bash(script, env={"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"})


def _postmaster_fds(cluster) -> list[str]:
    pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
    fds = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            fds.append(os.readlink(fd))
        except OSError:
            continue
    return fds


def _second_run_waits(tmp_path: Path) -> bool:
    """True when a second run would wait for the lock (flock -n fails)."""
    lock = tmp_path / "local" / "prepare.lock"
    out = subprocess.run(["flock", "-n", str(lock), "true"], capture_output=True, timeout=10, check=False)
    return out.returncode != 0


@needs_pg
def test_postgres_started_by_setup_does_not_hold_the_lock(tmp_path):
    from pgcluster import PgCluster, PgClusterError  # noqa: PLC0415 (needs the harness's sys.path)

    cluster = PgCluster()
    try:
        try:
            cluster.init()
        except PgClusterError as exc:
            pytest.skip(str(exc))
        result = _first_run(tmp_path, LIB, cluster)
        assert result.returncode == 0, result.stderr
        assert cluster.running(), "the shim did not start the private cluster"
        lock = str(tmp_path / "local" / "prepare.lock")
        assert lock not in _postmaster_fds(cluster), "PostgreSQL inherited the prepare lock"
        assert not _second_run_waits(tmp_path), "a second setup/run would wait for PostgreSQL to exit"
        # a real second run: the cluster is up now, the lock is taken and released at once
        second = bash(f"source {LIB}; OCORE_LOCAL={tmp_path / 'local'}; ocore_lock; ocore_unlock; echo taken",
                      timeout=20)
        assert second.stdout.strip() == "taken"
        assert "waiting for it" not in second.stderr
    finally:
        cluster.cleanup()


@needs_pg
def test_the_check_sees_an_inherited_lock(tmp_path):
    """Control: with the descriptor left open for pg_ctlcluster (the bug), the same check finds the lock held."""
    from pgcluster import PgCluster, PgClusterError  # noqa: PLC0415

    buggy = tmp_path / "lib.sh"
    text = LIB.read_text()
    assert 'pg_ctlcluster "$ver" "$cluster" start 9>&-' in text
    buggy.write_text(text.replace('pg_ctlcluster "$ver" "$cluster" start 9>&-', 'pg_ctlcluster "$ver" "$cluster" start'))
    cluster = PgCluster()
    try:
        try:
            cluster.init()
        except PgClusterError as exc:
            pytest.skip(str(exc))
        result = _first_run(tmp_path, buggy, cluster)
        assert result.returncode == 0, result.stderr
        assert str(tmp_path / "local" / "prepare.lock") in _postmaster_fds(cluster)
        assert _second_run_waits(tmp_path)
    finally:
        cluster.cleanup()
