"""Fixtures of the end-to-end suite: one real Odoo server per test session, driven by the MCP SDK.

    .venv-test/bin/python -m pytest tests/                 # threaded server (default)
    .venv-test/bin/python -m pytest tests/ --odoo-mode=prefork
    .venv-test/bin/python -m pytest tests/ --keep-db       # keep the database (name printed)
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Admin, HarnessError, OdooSetup, own_server  # noqa: E402
from mcp_helpers import Raw, connect  # noqa: E402

# Instance-wide calls-per-minute default during the suite: many tests share keys; the rate-limit
# test sets its own key override.
SUITE_RATE_LIMIT = 100000


def pytest_addoption(parser):
    group = parser.getgroup("ocore-e2e")
    group.addoption("--odoo-mode", default=os.environ.get("OCORE_E2E_ODOO_MODE", "threaded"),
                    choices=("threaded", "prefork"), help="how the Odoo server under test runs")
    group.addoption("--keep-db", action="store_true", default=False,
                    help="keep the test database after the session")


@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="session")
def odoo_setup():
    try:
        return OdooSetup.from_env()
    except HarnessError as exc:
        pytest.exit(str(exc), returncode=3)


@pytest.fixture(scope="session")
def odoo(request, odoo_setup):
    """The Odoo server under test (fresh database with ocore_mcp and the test extension)."""
    with own_server(request.config, odoo_setup, mode=request.config.getoption("--odoo-mode"),
                    rate_limit=SUITE_RATE_LIMIT) as server:
        yield server


@pytest.fixture(scope="session")
def admin(odoo) -> Admin:
    return odoo.admin


@pytest.fixture(scope="session")
def slug(odoo) -> str:
    return odoo.slug


@pytest.fixture(scope="module")
def internal_user_key(admin, request):
    """A key of an internal user who is not a system administrator (one per test module)."""
    stem = request.module.__name__.removeprefix("test_").removesuffix("_e2e")
    uid = admin.create_user(f"{stem}_e2e_user_{secrets.token_hex(3)}")
    return admin.create_key(name=f"{stem} e2e internal user", user_id=uid)


@pytest.fixture(scope="session")
def admin_key(admin):
    """A full-access key of the administrator (shared by read-only protocol tests)."""
    return admin.create_key("e2e admin key")


@pytest.fixture
def make_key(admin, request):
    """Factory: a new key with the given scopes (see ``Admin.create_key``)."""
    counter = iter(range(1, 1000))

    def factory(**kw):
        kw.setdefault("name", f"e2e {request.node.name[:80]} #{next(counter)}")
        return admin.create_key(**kw)

    return factory


@pytest.fixture
def mcp_client(odoo, admin_key):
    """Factory of connected SDK clients:

        async with mcp_client(transport="stream"|"sse", mode="legacy"|"2026-07-28"|"auto",
                              key=key, query="?instances=..") as client: ...
    """

    def factory(transport="stream", mode="legacy", key=None, query="", **kw):
        kw.setdefault("stream_port", odoo.gevent_port)  # prefork: long-lived GETs to the gevent port
        return connect(odoo.url, key or admin_key, transport=transport, mode=mode, query=query, **kw)

    return factory


@pytest.fixture
def raw(odoo):
    client = Raw(odoo.url)
    yield client
    client.close()


# -- server log on failures --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _server_log_offset(request):
    server = getattr(request.config, "_ocore_server", None)
    request.node._ocore_log_offset = server.log_size() if server else 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        server = getattr(item.config, "_ocore_server", None)
        if server is not None:
            text = server.log_since(getattr(item, "_ocore_log_offset", 0))
            lines = text.splitlines()[-80:]
            alive = "running" if server.proc and server.proc.poll() is None else f"EXITED ({server.proc.returncode})"
            report.sections.append(
                (f"odoo server log during the test (server {alive}, {server.log_path})", "\n".join(lines))
            )
