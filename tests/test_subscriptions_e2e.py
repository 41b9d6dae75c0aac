"""Change push end to end with the official SDK client: a partner subscribed to as a resource
(resources/subscribe in a 2025-11-25 session over Streamable HTTP and legacy SSE, subscriptions/listen in
2026-07-28) and written through XML-RPC is reported with notifications/resources/updated within 15 s, only
to subscribers whose key owner may read it; notifications/tools/list_changed after a key scope change and
after a module install or uninstall. Threaded and prefork (--odoo-mode=prefork: the streams are held by the
gevent worker, the writes and subscriptions served by the HTTP workers)."""

from __future__ import annotations

import secrets
import time

import anyio
import pytest
from mcp import MCPError
from harness import ARTIFACTS, NginxProxy, OdooServer, pg_query
from mcp.client.subscriptions import ResourceUpdated, ToolsListChanged
from mcp_helpers import MODERN, TRANSPORT_IDS, TRANSPORTS, connect

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]  # a module install, a second server

DEADLINE = 15  # seconds between a write and its notification at the subscriber
WARM_UP = 20  # a Streamable HTTP client opens its GET stream after the handshake, in the background
KNOWLEDGE_ADDON = "ocore_mcp_knowledge"  # an addon that adds tools (the context family)


def method_of(message):
    return getattr(message, "method", None) or getattr(getattr(message, "root", None), "method", None)


def params_of(message):
    return getattr(message, "params", None) or getattr(getattr(message, "root", None), "params", None)


class Inbox:
    """The notifications a 2025-era client's message handler receives."""

    def __init__(self):
        self.items = []
        self.arrived = anyio.Event()

    async def __call__(self, message):
        method = method_of(message)
        if method in ("notifications/resources/updated", "notifications/tools/list_changed"):
            params = params_of(message)
            self.items.append((method, str(getattr(params, "uri", "") or "")))
            self.arrived.set()

    async def wait(self, method, uri="", timeout=DEADLINE):
        """Seconds until (method, uri) is in the inbox (counted from now), or TimeoutError."""
        started = time.monotonic()
        with anyio.fail_after(timeout):
            while (method, uri) not in self.items:
                self.arrived = anyio.Event()
                if (method, uri) in self.items:
                    break
                await self.arrived.wait()
        return time.monotonic() - started

    def clear(self):
        self.items.clear()


def subscribe(client, uri):
    with pytest.warns(Warning):  # the SDK marks resources/subscribe as removed in 2026-07-28
        return client.subscribe_resource(uri)


async def next_event(sub, timeout=DEADLINE):
    with anyio.fail_after(timeout):
        return await sub.__anext__()


@pytest.fixture
def partner(admin):
    return admin.create("res.partner", {"name": f"Subscribed Partner {secrets.token_hex(3)}"})


async def warm_up_session(admin, inbox, partner, uri):
    """Write until the session's stream reports a change: the GET stream of a Streamable HTTP session is
    opened by the client after the handshake, and what is written before it listens reaches nobody."""
    deadline = time.monotonic() + WARM_UP
    n = 0
    while True:
        n += 1
        admin.xmlrpc("res.partner", "write", [partner], {"comment": f"warm-up {n}"})
        try:
            await inbox.wait("notifications/resources/updated", uri, timeout=2)
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_partner_written_over_xmlrpc_is_reported(mcp_client, admin, slug, partner, transport, mode):
    uri = f"odoo://res.partner/{partner}"
    if mode == MODERN:
        async with mcp_client(transport=transport, mode=mode) as client:
            async with client.listen(resource_subscriptions=[uri, "odoo://instance"]) as sub:
                # only what the server reports is acknowledged: a record, not the instance summary
                assert sub.honored.resource_subscriptions == [uri]
                started = time.monotonic()
                admin.xmlrpc("res.partner", "write", [partner], {"name": f"Renamed {secrets.token_hex(3)}"})
                event = await next_event(sub)
                latency = time.monotonic() - started
                assert event == ResourceUpdated(uri=uri)
                # another MCP client's write is reported too
                async with mcp_client(transport="stream", mode=MODERN) as writer:
                    result = await writer.call_tool(f"{slug}_write", {
                        "model": "res.partner", "ids": [partner], "values": {"ref": "MCP"}})
                    assert not result.is_error, result
                assert await next_event(sub) == ResourceUpdated(uri=uri)
    else:
        inbox = Inbox()
        async with mcp_client(transport=transport, mode=mode, message_handler=inbox) as client:
            await subscribe(client, uri)
            rows = admin.search_read("ocore.mcp.subscription", [("uri", "=", uri)], ["session_id", "kind"])
            assert rows and rows[0]["kind"] == "resource" and rows[0]["session_id"]
            await warm_up_session(admin, inbox, partner, uri)
            inbox.clear()
            started = time.monotonic()
            admin.xmlrpc("res.partner", "write", [partner], {"name": f"Renamed {secrets.token_hex(3)}"})
            await inbox.wait("notifications/resources/updated", uri)
            latency = time.monotonic() - started
            with pytest.warns(Warning):
                await client.unsubscribe_resource(uri)
            assert not admin.search_read("ocore.mcp.subscription", [("uri", "=", uri)], ["id"])
            inbox.clear()
            admin.xmlrpc("res.partner", "write", [partner], {"name": "After unsubscribe"})
            await anyio.sleep(3)
            assert inbox.items == []
    print(f"\n{transport}-{mode}: notifications/resources/updated {latency * 1000:.0f} ms after the XML-RPC write")
    assert latency < DEADLINE
    # the listen stream's and the session's subscriptions end with them (a server notices a client that left
    # when it next writes to the stream: a ping at least every 15 s)
    deadline = time.monotonic() + 30
    while admin.search_read("ocore.mcp.subscription", [("uri", "=", uri)], ["id"]) and time.monotonic() < deadline:
        await anyio.sleep(0.5)
    assert not admin.search_read("ocore.mcp.subscription", [("uri", "=", uri)], ["id"])


@pytest.mark.parametrize(("transport", "mode"), [("sse", "legacy"), ("stream", MODERN)], ids=["sse-legacy", "stream-2026"])
async def test_change_while_the_listener_reconnects_is_not_lost(mcp_client, admin, odoo, odoo_setup, partner,
                                                                  transport, mode):
    """A record written while the server's listening connection is cut (a PostgreSQL restart, a network
    blip) is still reported once the listener is back: changes are not stored, so the server reports every
    subscribed record as updated after a reconnection."""
    uri = f"odoo://res.partner/{partner}"

    def cut_listener():
        killed = pg_query(odoo_setup, odoo.db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND application_name = 'ocore_mcp_listener'", (odoo.db,))
        assert killed, "no listening connection to cut"
        # written at once: the listener waits a second before it connects and listens again
        admin.xmlrpc("res.partner", "write", [partner], {"name": f"Written while away {secrets.token_hex(3)}"})

    if mode == MODERN:
        async with mcp_client(transport=transport, mode=mode) as client:
            async with client.listen(resource_subscriptions=[uri]) as sub:
                admin.xmlrpc("res.partner", "write", [partner], {"comment": "listened"})
                assert await next_event(sub) == ResourceUpdated(uri=uri)
                cut_listener()
                assert await next_event(sub) == ResourceUpdated(uri=uri)
    else:
        inbox = Inbox()
        async with mcp_client(transport=transport, mode=mode, message_handler=inbox) as client:
            await subscribe(client, uri)
            await warm_up_session(admin, inbox, partner, uri)
            inbox.clear()
            cut_listener()
            await inbox.wait("notifications/resources/updated", uri)


@pytest.fixture(scope="module")
def other_company(admin):
    """A second company the administrator belongs to (a key of theirs may work in it)."""
    company = admin.create("res.company", {"name": f"Subscriptions Other Co {secrets.token_hex(3)}"})
    admin.write("res.users", [admin.uid], {"company_ids": [(4, company)]})
    return company


@pytest.mark.parametrize("mode", ["legacy", MODERN])
async def test_subscriber_without_read_access_receives_nothing(mcp_client, admin, make_key, other_company, mode):
    """A user subscribes to a partner of their company; the partner moves to another company (a record rule
    now hides it from them): its next changes reach a subscriber who may read it, never the user."""
    main_company = admin.search_read("res.users", [("id", "=", admin.uid)], ["company_id"])[0]["company_id"][0]
    uid = admin.create_user(f"subs_e2e_{secrets.token_hex(3)}", company_ids=[main_company])
    user_key = make_key(user_id=uid, read_only=True)
    control_key = make_key(company_id=other_company)  # the administrator, working in the other company
    hidden = admin.create("res.partner", {"name": "Other Company Partner", "company_id": other_company})
    shared = admin.create("res.partner", {"name": f"Shared Partner {secrets.token_hex(3)}",
                                          "company_id": main_company})
    hidden_uri, shared_uri = f"odoo://res.partner/{hidden}", f"odoo://res.partner/{shared}"
    if mode == MODERN:
        async with mcp_client(mode=MODERN, key=control_key) as watcher, \
                mcp_client(mode=MODERN, key=user_key) as client:
            async with client.listen(resource_subscriptions=[hidden_uri, shared_uri]) as sub:
                # a record the owner may not read is not acknowledged (as if it did not exist)
                assert sub.honored.resource_subscriptions == [shared_uri]
                admin.xmlrpc("res.partner", "write", [shared], {"comment": "still theirs"})
                assert await next_event(sub) == ResourceUpdated(uri=shared_uri)
                admin.xmlrpc("res.partner", "write", [shared], {"company_id": other_company})
                async with watcher.listen(resource_subscriptions=[shared_uri]) as control:
                    assert control.honored.resource_subscriptions == [shared_uri]
                    admin.xmlrpc("res.partner", "write", [shared], {"name": "Moved Partner"})
                    assert await next_event(control) == ResourceUpdated(uri=shared_uri)
                    with pytest.raises(TimeoutError):
                        await next_event(sub, timeout=3)
    else:
        inbox, control = Inbox(), Inbox()
        async with mcp_client(message_handler=control, key=control_key) as watcher, \
                mcp_client(message_handler=inbox, key=user_key) as client:
            with pytest.raises(MCPError) as refused:
                await subscribe(client, hidden_uri)
            assert refused.value.error.code == -32002
            await subscribe(client, shared_uri)
            await warm_up_session(admin, inbox, shared, shared_uri)  # the user's stream listens
            await anyio.sleep(1)
            inbox.clear()  # from here on, nothing may reach the user
            admin.xmlrpc("res.partner", "write", [shared], {"company_id": other_company})
            await subscribe(watcher, shared_uri)
            await warm_up_session(admin, control, shared, shared_uri)
            control.clear()
            admin.xmlrpc("res.partner", "write", [shared], {"name": "Moved Partner"})
            await control.wait("notifications/resources/updated", shared_uri)
            await anyio.sleep(2)
            assert inbox.items == [], inbox.items


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_list_changed_after_key_scope_change(mcp_client, admin, make_key, transport, mode):
    key = make_key()
    orm = admin.search_read("ocore.mcp.category", [("code", "=", "orm")], ["id"])[0]["id"]
    if mode == MODERN:
        async with mcp_client(transport=transport, mode=mode, key=key) as client:
            before = len((await client.list_tools()).tools)
            async with client.listen(tools_list_changed=True) as sub:
                assert sub.honored.tools_list_changed is True
                admin.write("ocore.mcp.key", [key.id], {"category_ids": [(6, 0, [orm])]})
                assert await next_event(sub) == ToolsListChanged()
            assert len((await client.list_tools()).tools) < before
    else:
        inbox = Inbox()
        async with mcp_client(transport=transport, mode=mode, key=key, message_handler=inbox) as client:
            before = len((await client.list_tools()).tools)
            await anyio.sleep(1)  # the GET stream of a Streamable HTTP session opens after the handshake
            admin.write("ocore.mcp.key", [key.id], {"category_ids": [(6, 0, [orm])]})
            await inbox.wait("notifications/tools/list_changed")
            assert len((await client.list_tools()).tools) < before


async def test_list_changed_after_module_install_and_uninstall(mcp_client, admin):
    module = admin.search_read("ir.module.module", [("name", "=", KNOWLEDGE_ADDON)], ["id", "state"])[0]
    assert module["state"] == "uninstalled", "the suite's database does not have the knowledge addon"
    inbox = Inbox()
    try:
        async with mcp_client(transport="sse", message_handler=inbox) as legacy, \
                mcp_client(mode=MODERN) as modern:
            async with modern.listen(tools_list_changed=True) as sub:
                admin.call("ir.module.module", "button_immediate_install", [module["id"]])
                await inbox.wait("notifications/tools/list_changed", timeout=60)
                assert await next_event(sub, timeout=60) == ToolsListChanged()
                assert any(t.name.endswith("_add_note") for t in (await legacy.list_tools()).tools)
                inbox.clear()
                admin.call("ir.module.module", "button_immediate_uninstall", [module["id"]])
                module = None
                await inbox.wait("notifications/tools/list_changed", timeout=60)
                assert await next_event(sub, timeout=60) == ToolsListChanged()
                assert not any(t.name.endswith("_add_note") for t in (await legacy.list_tools()).tools)
    finally:
        if module is not None:  # leave the suite's database as it was
            state = admin.search_read("ir.module.module", [("id", "=", module["id"])], ["state"])[0]["state"]
            if state == "installed":
                admin.call("ir.module.module", "button_immediate_uninstall", [module["id"]])


@pytest.fixture(scope="module")
def behind_nginx(odoo, odoo_setup):
    """A prefork Odoo (--workers=2, gevent port, --proxy-mode) on the suite's database behind nginx configured
    with the repository's template (deploy/nginx/ocore-mcp.conf)."""
    server = OdooServer(odoo_setup, odoo.db, mode="prefork", workers=2, extra_args=("--proxy-mode",))
    server.log_path = ARTIFACTS / f"{odoo.db}-server-subscriptions-nginx.log"
    nginx = None
    try:
        server.start()
        server.wait_stream_port()
        nginx = NginxProxy(server).start()
        yield nginx
    finally:
        if nginx is not None:
            nginx.stop()
        server.stop()


@pytest.mark.parametrize("mode", ["legacy", MODERN])
async def test_through_the_documented_proxy(behind_nginx, admin, admin_key, partner, mode):
    """nginx sends the GET stream and the subscriptions/listen POST to the gevent worker, the subscription
    and the write to the HTTP workers: the update crosses processes through PostgreSQL."""
    uri = f"odoo://res.partner/{partner}"
    if mode == MODERN:
        async with connect(behind_nginx.url, admin_key, mode=MODERN) as client:
            async with client.listen(resource_subscriptions=[uri]) as sub:
                admin.xmlrpc("res.partner", "write", [partner], {"name": f"Proxied {secrets.token_hex(3)}"})
                assert await next_event(sub) == ResourceUpdated(uri=uri)
    else:
        inbox = Inbox()
        async with connect(behind_nginx.url, admin_key, message_handler=inbox) as client:
            await subscribe(client, uri)
            await warm_up_session(admin, inbox, partner, uri)
