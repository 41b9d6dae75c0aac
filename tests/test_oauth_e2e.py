"""OAuth addon end to end: a real Odoo server with ocore_mcp_oauth, the official MCP SDK client with its
OAuth client provider, and a real headless Chromium logging in as an Odoo user and answering the consent page.

Screenshots of every page the browser sees are kept in tests/artifacts/oauth/.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import hashlib
import http.server
import ipaddress
import json
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import xmlrpc.client
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx2
import pytest
from harness import (
    ARTIFACTS,
    DB_PREFIX,
    MAIN_ADDON,
    Admin,
    OdooServer,
    create_database,
    drop_database,
    slug_of,
)
from mcp import Client, StdioServerParameters
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.utils import build_protected_resource_metadata_discovery_urls
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientMetadata,
    OAuthMetadata,
    ProtectedResourceMetadata,
)
from mcp.shared.auth_utils import check_resource_allowed
from mcp_helpers import SseReader, connect, data_of, error_of, initialize_msg
from mcp_types import Implementation
from pydantic import AnyUrl

pytestmark = pytest.mark.anyio

OAUTH_ADDON = "ocore_mcp_oauth"
PORTS = range(8631, 8638)  # Odoo's HTTP port; 8638 serves client metadata documents over TLS
CIMD_PORT = 8638
CALLBACK = "http://127.0.0.1:8639/callback"  # never listened on: the browser's navigation to it is intercepted
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SHOTS = ARTIFACTS / "oauth"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
USERS = {
    "alice": ("alice@oauth.e2e", "alice-Pass-7431"),
    "vera": ("vera@oauth.e2e", "vera-Pass-7431"),
    "nora": ("nora@oauth.e2e", "nora-Pass-7431"),
    "otto": ("otto@oauth.e2e", "otto-Pass-7431"),
    "manny": ("manny@oauth.e2e", "manny-Pass-7431"),
    "carol": ("carol@oauth.e2e", "carol-Pass-7431"),
}


def _port_in_range():
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


class MetadataDocumentServer:
    """An HTTPS server (self-signed certificate for 127.0.0.1) publishing client ID metadata documents,
    like a client's web site does. Odoo trusts the certificate through REQUESTS_CA_BUNDLE."""

    def __init__(self, port, directory):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        directory.mkdir(parents=True, exist_ok=True)
        self.cert_path = directory / "cimd-cert.pem"
        key_path = directory / "cimd-key.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        self.base_url = f"https://127.0.0.1:{port}"
        self.documents = {}
        self.fetches = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.fetches.append(self.path)
                document = owner.documents.get(self.path)
                body = json.dumps(document).encode() if document is not None else b"{}"
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key_path)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, path, document):
        self.documents[path] = document
        return f"{self.base_url}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def oauth_odoo(odoo_setup, request):
    """A server of its own: ocore_mcp + ocore_mcp_oauth, with users of several roles and two companies."""
    db = f"{DB_PREFIX}oauth_{time.strftime('%m%d%H%M%S')}_{secrets.token_hex(3)}"
    documents = MetadataDocumentServer(CIMD_PORT, ARTIFACTS / "oauth")
    setup = copy.copy(odoo_setup)
    setup.process_env = lambda: {**odoo_setup.process_env(), "REQUESTS_CA_BUNDLE": str(documents.cert_path)}
    server = OdooServer(setup, db)
    server.documents = documents
    server.port = _port_in_range()
    server.url = f"http://127.0.0.1:{server.port}"
    previous = getattr(request.config, "_ocore_server", None)
    try:
        create_database(odoo_setup, db, addons=(MAIN_ADDON, OAUTH_ADDON))
        server.start()
        admin = server.admin = Admin(server.url, db)
        admin.set_param("ocore_mcp.rate_limit", 100000)
        main_company = admin.ref("base.main_company")
        second = admin.create("res.company", {"name": "Second Org"})
        server.companies = {"main": main_company, "second": second}
        server.uids = {
            "alice": admin.create_user(USERS["alice"][0], password=USERS["alice"][1], name="Alice Martin",
                                       company_ids=[main_company, second]),
            "vera": admin.create_user(USERS["vera"][0], groups=("ocore_mcp.group_mcp_viewer",),
                                      password=USERS["vera"][1], name="Vera Viewer"),
            "nora": admin.create_user(USERS["nora"][0], groups=(), password=USERS["nora"][1], name="Nora Newcomer",
                                      company_ids=[second]),
            "otto": admin.create_user(USERS["otto"][0], groups=(), password=USERS["otto"][1], name="Otto Other",
                                      company_ids=[second]),
            "manny": admin.create_user(USERS["manny"][0], groups=("ocore_mcp.group_mcp_manager",),
                                       password=USERS["manny"][1], name="Manny Manager"),
            "carol": admin.create_user(USERS["carol"][0], groups=("ocore_mcp.group_mcp_manager", "base.group_system"),
                                       password=USERS["carol"][1], name="Carol Admin"),
        }
    except BaseException:
        server.stop()
        documents.close()
        if not request.config.getoption("--keep-db"):
            drop_database(odoo_setup, db)
        raise
    request.config._ocore_server = server  # server log in failure reports
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield server
    request.config._ocore_server = previous
    server.stop()
    documents.close()
    if request.config.getoption("--keep-db"):
        print(f"\nkept database {db} (server log {server.log_path})")
    else:
        drop_database(odoo_setup, db)


@pytest.fixture
def admin(oauth_odoo):
    return oauth_odoo.admin


def as_user(server, name):
    login, password = USERS[name]
    return Admin(server.url, server.admin.db, login=login, password=password)


def params(admin, **values):
    """Temporarily set ``ocore_mcp_oauth.<name>`` system parameters."""
    return admin.params(prefix="ocore_mcp_oauth", **values)


# -- the browser ------------------------------------------------------------------------------------


class Browser:
    """Headless Chromium (Debian's) driven through Playwright; intercepts navigations to the client callback."""

    def __init__(self, page, test_name):
        self.page = page
        self.test_name = test_name
        self.callbacks = []
        self.shots = []

    async def shot(self, label):
        path = SHOTS / f"{self.test_name}-{len(self.shots) + 1:02d}-{label}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    async def login_if_asked(self, user):
        """On Odoo's login page, sign in as ``user`` (a real account, real password)."""
        if "/web/login" not in self.page.url:
            return False
        await self.shot("login")
        login, password = USERS[user]
        await self.page.fill("input[name=login]", login)
        await self.page.fill("input[name=password]", password)
        async with self.page.expect_navigation():
            await self.page.click("form.oe_login_form button[type=submit]")
        assert "/web/login" not in self.page.url, f"login of {login} failed: {await self.page.inner_text('body')}"
        return True

    async def wait_callback(self, timeout=20):
        with anyio.fail_after(timeout):
            while not self.callbacks:
                await anyio.sleep(0.05)
        return self.callbacks[-1]


@contextlib.asynccontextmanager
async def browser_session(request):
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            context = await chromium.new_context(viewport={"width": 1100, "height": 900})
            page = await context.new_page()
            browser = Browser(page, re.sub(r"[^\w-]+", "_", request.node.name)[:80])

            async def on_callback(route):
                browser.callbacks.append(route.request.url)
                await route.fulfill(status=200, content_type="text/html",
                                    body="<html><body><h1>Authorization received</h1></body></html>")

            await page.route(f"{CALLBACK}**", on_callback)
            yield browser
        finally:
            await chromium.close()


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# -- the SDK's OAuth client provider ----------------------------------------------------------------------


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory (what a desktop client keeps on disk)."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


def oauth_provider(server, browser, user, consent, path, client_name="e2e OAuth client", storage=None,
                   client_metadata_url=None):
    """The SDK's OAuthClientProvider whose redirect handler drives the browser: Odoo login, then the consent
    page (``consent(browser)`` fills it and submits), and whose callback handler reads the redirect."""
    storage = storage or MemoryStorage()

    async def redirect_handler(authorization_url):
        browser.authorization_url = authorization_url
        await browser.page.goto(authorization_url)
        await browser.login_if_asked(user)
        assert "/oauth/authorize" in browser.page.url, browser.page.url
        await browser.shot("consent")
        await consent(browser)

    async def callback_handler():
        url = await browser.wait_callback()
        await browser.shot("callback")
        query = query_of(url)
        assert "code" in query, f"no code in the redirect: {url}"
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    provider = OAuthClientProvider(
        server_url=f"{server.url}{path}",
        client_metadata=OAuthClientMetadata(client_name=client_name, redirect_uris=[AnyUrl(CALLBACK)]),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=client_metadata_url,
    )
    return provider, storage


@contextlib.asynccontextmanager
async def oauth_client(server, provider, path, transport):
    info = Implementation(name="ocore-oauth-e2e", version="1.0")
    if transport == "stream":
        async with (
            httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(60, read=300)) as http,
            Client(streamable_http_client(f"{server.url}{path}", http_client=http), mode="legacy",
                   client_info=info, cache=None) as client,
        ):
            yield client
    else:
        async with Client(sse_client(f"{server.url}{path}", auth=provider, timeout=60), mode="legacy",
                          client_info=info, cache=None) as client:
            yield client


async def approve_with(browser, preset=None, categories=(), read_only=None, company=None, existing_key=None,
                       decision="approve"):
    page = browser.page
    if company:
        await page.select_option("#company_id", label=company)
    if existing_key:
        await page.check("#key_mode_existing")
        await page.select_option("#key_id", value=str(existing_key))
    if preset == "read_only":  # one read-only control: every category, reading only
        preset, read_only = "full", True
    if preset:
        await page.check(f"#preset_{preset}")
    for code in categories:
        await page.check(f"#cat_{code}")
    if read_only is not None:
        await page.set_checked("#read_only", read_only)
    await browser.shot("consent-filled")
    await page.click(f"button.o_ocore_{decision}")


# -- plain HTTP: a user session and an OAuth client without the SDK -----------------------------------------


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


class WebUser:
    """A browserless Odoo web session of a real user (the /web/login form), to answer consent forms."""

    def __init__(self, server, user):
        self.server = server
        self.http = httpx2.Client(base_url=server.url, timeout=30, follow_redirects=False)
        page = self.http.get("/web/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        login, password = USERS[user]
        resp = self.http.post("/web/login", data={"login": login, "password": password, "csrf_token": csrf,
                                                  "redirect": "/web"})
        assert resp.status_code == 303 and "/web/login" not in resp.headers["location"], resp.text[:300]

    def close(self):
        self.http.close()

    def consent(self, authorize_params, decision="approve", **form):
        page = self.http.get("/oauth/authorize", params=authorize_params)
        assert page.status_code == 200, page.text[:500]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        data = {"csrf_token": csrf, "decision": decision, "key_mode": "new", "preset": "standard",
                "company_id": self.server.companies["main"], **authorize_params, **form}
        resp = self.http.post("/oauth/authorize", data=data)
        assert resp.status_code in (302, 303), resp.text[:500]
        return resp.headers["location"]


class RawClient:
    """A registered public client speaking the protocol by hand (to send what the SDK never sends)."""

    def __init__(self, server, **metadata):
        self.server = server
        self.http = httpx2.Client(base_url=server.url, timeout=30, follow_redirects=False)
        body = {"client_name": "raw e2e client", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"], **metadata}
        resp = self.http.post("/oauth/register", json=body)
        assert resp.status_code == 201, resp.text
        self.info = resp.json()
        self.client_id = self.info["client_id"]

    def close(self):
        self.http.close()

    def authorize_params(self, challenge, **extra):
        values = {"response_type": "code", "client_id": self.client_id, "redirect_uri": CALLBACK, "state": "s-1",
                  "code_challenge": challenge, "code_challenge_method": "S256", "scope": "mcp offline_access",
                  "resource": f"{self.server.url}/ocore/mcp/stream", **extra}
        return {k: v for k, v in values.items() if v is not None}

    def token(self, **data):
        resp = self.http.post("/oauth/token", data={"client_id": self.client_id, **data})
        return resp.status_code, resp.json()

    def exchange(self, code, verifier, **extra):
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier,
                "resource": f"{self.server.url}/ocore/mcp/stream", **extra}
        return self.token(**{k: v for k, v in data.items() if v is not None})

    def code_for(self, web_user, **form):
        verifier, challenge = pkce_pair()
        location = web_user.consent(self.authorize_params(challenge), **form)
        query = query_of(location)
        assert "code" in query, location
        return query["code"], verifier

    def tokens_for(self, web_user, **form):
        code, verifier = self.code_for(web_user, **form)
        status, body = self.exchange(code, verifier)
        assert status == 200, body
        return body


def mcp_status(server, token, path="/ocore/mcp/stream"):
    """HTTP status of an MCP initialize with this bearer token (and the WWW-Authenticate header)."""
    resp = httpx2.post(f"{server.url}{path}", json=initialize_msg(), timeout=30, headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"})
    return resp.status_code, resp.headers.get("www-authenticate", "")


def authorization_of(admin, user_id, client_name=None, client_id=None):
    """The one authorization of a user for a client (by name, or the latest one by client_id)."""
    domain = [("user_id", "=", user_id), ("active", "in", [True, False])]
    domain.append(("client_id.client_id", "=", client_id) if client_id else ("client_id.name", "=", client_name))
    rows = admin.search_read("ocore.mcp.oauth.authorization", domain,
                             ["key_id", "company_id", "key_auto_created", "active", "last_auth_at"], order="id desc")
    assert rows and (client_id or len(rows) == 1), rows
    return rows[0]


def key_of(admin, key_id, fields=("name", "origin", "read_only", "category_ids", "company_id", "user_id", "active")):
    return admin.search_read("ocore.mcp.key", [("id", "=", key_id), ("active", "in", [True, False])],
                             list(fields))[0]


def category_codes(admin, ids):
    return sorted(r["code"] for r in admin.search_read("ocore.mcp.category", [("id", "in", ids)], ["code"]))


# -- discovery ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ocore/mcp/stream", "/ocore/mcp/sse", "/api/mcp/stream", "/api/mcp/sse"])
async def test_discovery_from_the_mcp_url_alone(oauth_odoo, path):
    url = f"{oauth_odoo.url}{path}"
    with httpx2.Client(timeout=30) as http:
        resp = http.post(url, json=initialize_msg()) if "stream" in path else http.get(url)
        assert resp.status_code == 401
        header = resp.headers["www-authenticate"]
        metadata_url = re.search(r'resource_metadata="([^"]+)"', header).group(1)
        # the header names the path-suffixed document, the SDK's second candidate too (RFC 9728 §3.1)
        assert metadata_url == f"{oauth_odoo.url}/.well-known/oauth-protected-resource{path}"
        assert build_protected_resource_metadata_discovery_urls(None, url)[0] == metadata_url
        prm = ProtectedResourceMetadata.model_validate_json(http.get(metadata_url).content)
        assert str(prm.resource) == url
        assert check_resource_allowed(url, str(prm.resource))
        assert [str(s) for s in prm.authorization_servers] == [oauth_odoo.url]
        assert prm.scopes_supported == ["mcp"]
        asm = OAuthMetadata.model_validate_json(http.get(f"{oauth_odoo.url}/.well-known/oauth-authorization-server")
                                                .content)
    assert str(asm.issuer) == oauth_odoo.url
    assert str(asm.authorization_endpoint) == f"{oauth_odoo.url}/oauth/authorize"
    assert str(asm.token_endpoint) == f"{oauth_odoo.url}/oauth/token"
    assert str(asm.registration_endpoint) == f"{oauth_odoo.url}/oauth/register"
    assert str(asm.revocation_endpoint) == f"{oauth_odoo.url}/oauth/revoke"
    assert asm.code_challenge_methods_supported == ["S256"]
    assert asm.response_types_supported == ["code"]
    assert set(asm.grant_types_supported) == {"authorization_code", "refresh_token", DEVICE_GRANT}
    assert asm.authorization_response_iss_parameter_supported is True
    assert "offline_access" in asm.scopes_supported


# -- the whole flow with the SDK and a browser ----------------------------------------------------------------


async def test_sdk_flow_streamable_http_new_key(oauth_odoo, admin, request):
    """URL only -> 401 -> metadata -> registration -> Odoo login + consent in Chromium -> token -> tools."""
    slug = slug_of(admin.db)
    client_name = "Claude-like e2e client"
    async with browser_session(request) as browser:

        async def consent(b):
            page = b.page
            assert await page.inner_text(".o_ocore_oauth_client") == client_name
            scopes = await page.inner_text(".o_ocore_oauth_scopes")
            assert "mcp" in scopes and "offline_access" in scopes
            companies = await page.eval_on_selector_all("#company_id option", "els => els.map(e => e.textContent)")
            main_name = admin.search_read("res.company", [("id", "=", oauth_odoo.companies["main"])], ["name"])
            assert sorted(companies) == sorted([main_name[0]["name"], "Second Org"])  # Alice's two companies
            await approve_with(b, company="Second Org", preset="custom", categories=("orm", "search"),
                               read_only=True)

        provider, storage = oauth_provider(oauth_odoo, browser, "alice", consent, "/ocore/mcp/stream",
                                           client_name=client_name)
        ttl = 12  # short-lived access tokens: the SDK has to refresh within this session
        with params(admin, access_token_ttl=ttl):
            async with oauth_client(oauth_odoo, provider, "/ocore/mcp/stream", "stream") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert f"{slug}_search_read" in names and f"{slug}_count" in names
                assert f"{slug}_execute_sql" not in names  # category sql not granted
                assert f"{slug}_get_instance_info" not in names  # metadata not granted
                counted = data_of(await client.call_tool(f"{slug}_count", {"model": "res.users"}))
                assert counted["count"] >= 1
                refused = error_of(await client.call_tool(f"{slug}_create", {"model": "res.partner",
                                                                             "values": {"name": "x"}}))
                assert "write operations blocked" in refused
                first = storage.tokens
                await anyio.sleep(ttl + 1)
                # expired: the provider refreshes (rotation) before this request, the session goes on
                assert data_of(await client.call_tool(f"{slug}_count", {"model": "res.users"}))["count"] >= 1
                assert storage.tokens.access_token != first.access_token
                assert storage.tokens.refresh_token != first.refresh_token
        assert mcp_status(oauth_odoo, first.access_token)[0] == 401  # rotated out with its refresh token

        # another client process with the stored tokens and registration: no browser, 2026-07-28 envelope
        async def no_browser(url):
            raise AssertionError(f"the stored tokens should have been used, not a new authorization: {url}")

        reuse = OAuthClientProvider(
            server_url=f"{oauth_odoo.url}/ocore/mcp/stream",
            client_metadata=OAuthClientMetadata(client_name=client_name, redirect_uris=[AnyUrl(CALLBACK)]),
            storage=storage, redirect_handler=no_browser, callback_handler=no_browser,
        )
        async with (
            httpx2.AsyncClient(auth=reuse, timeout=60) as http,
            Client(streamable_http_client(f"{oauth_odoo.url}/ocore/mcp/stream", http_client=http),
                   mode="2026-07-28", cache=None) as client,
        ):
            assert data_of(await client.call_tool(f"{slug}_count", {"model": "res.users"}))["count"] >= 1
        # the backend list, with both of Alice's companies selected (the authorization is in the second)
        cids = f"{oauth_odoo.companies['main']}-{oauth_odoo.companies['second']}"
        await browser.page.context.add_cookies([{"name": "cids", "value": cids, "url": oauth_odoo.url}])
        await browser.page.goto(f"{oauth_odoo.url}/odoo/action-ocore_mcp_oauth.action_oauth_authorization")
        await browser.page.wait_for_selector(".o_list_view .o_data_row")
        await browser.shot("backend-authorizations")
        assert client_name in await browser.page.inner_text(".o_list_view")
    assert browser.authorization_url.startswith(f"{oauth_odoo.url}/oauth/authorize?")
    authorize = query_of(browser.authorization_url)
    assert authorize["code_challenge_method"] == "S256"
    assert authorize["resource"] == f"{oauth_odoo.url}/ocore/mcp/stream"
    assert authorize["scope"] == "mcp offline_access"
    tokens = storage.tokens
    assert tokens.access_token.startswith("ocoat_") and tokens.refresh_token.startswith("ocort_")
    assert tokens.scope == "mcp mcp:read mcp:orm mcp:search offline_access"  # exactly the key's scopes
    assert storage.client_info.client_id and storage.client_info.client_secret  # registered (RFC 7591)
    auth = authorization_of(admin, oauth_odoo.uids["alice"], client_name)
    assert auth["company_id"][0] == oauth_odoo.companies["second"]
    assert auth["key_auto_created"] is True and auth["last_auth_at"]
    key = key_of(admin, auth["key_id"][0])
    assert key["origin"] == "oauth" and key["read_only"] is True
    assert key["user_id"][0] == oauth_odoo.uids["alice"]
    assert key["company_id"][0] == oauth_odoo.companies["second"]
    assert category_codes(admin, key["category_ids"]) == ["orm", "search"]
    calls = admin.audit([("key_id", "=", auth["key_id"][0]), ("event", "=", "call")], limit=5)
    assert {c["tool"] for c in calls} >= {"count", "create"}
    assert {c["transport"] for c in admin.audit([("key_id", "=", auth["key_id"][0])], limit=20)} >= {
        "stream", "modern"}
    assert all(c["user_id"][0] == oauth_odoo.uids["alice"] for c in calls)


async def test_sdk_flow_legacy_sse_links_an_existing_key(oauth_odoo, admin, request):
    """The /api/mcp/sse alias, the key picker of the consent page, then revocation closing the stream."""
    slug = slug_of(admin.db)
    manual = admin.create_key(name="Alice's metadata key", user_id=oauth_odoo.uids["alice"],
                              categories=("metadata",))
    client_name = "SSE e2e client"
    async with browser_session(request) as browser:

        async def consent(b):
            options = await b.page.eval_on_selector_all("#key_id option", "els => els.map(e => e.value)")
            assert str(manual.id) in options
            await approve_with(b, existing_key=manual.id)

        provider, storage = oauth_provider(oauth_odoo, browser, "alice", consent, "/api/mcp/sse",
                                           client_name=client_name)
        async with oauth_client(oauth_odoo, provider, "/api/mcp/sse", "sse") as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert f"{slug}_get_instance_info" in names
            assert f"{slug}_search_read" not in names  # the linked key only has "metadata"
            info = data_of(await client.call_tool(f"{slug}_get_instance_info", {}))
            assert info
    auth = authorization_of(admin, oauth_odoo.uids["alice"], client_name)
    assert auth["key_id"][0] == manual.id and auth["key_auto_created"] is False
    rows = admin.audit([("key_id", "=", manual.id), ("event", "=", "call")], limit=1)
    assert rows and rows[0]["transport"] == "sse"

    # an open stream of this authorization closes within 30 s of the revocation; the linked key stays
    token = storage.tokens.access_token
    reader = await anyio.to_thread.run_sync(lambda: SseReader(oauth_odoo.url, token, path="/api/mcp/sse"))
    try:
        await anyio.to_thread.run_sync(reader.read_endpoint)
        alice = as_user(oauth_odoo, "alice")
        auth_id = authorization_of(admin, oauth_odoo.uids["alice"], client_name)["id"]
        alice.call("ocore.mcp.oauth.authorization", "action_revoke", [auth_id])
        waited = await anyio.to_thread.run_sync(reader.wait_closed, 35)
        assert waited < 30
    finally:
        reader.close()
    assert mcp_status(oauth_odoo, token, "/api/mcp/stream")[0] == 401
    assert key_of(admin, manual.id)["active"] is True
    assert authorization_of(admin, oauth_odoo.uids["alice"], client_name)["active"] is False


async def test_sdk_flow_with_a_client_id_metadata_document(oauth_odoo, admin, request):
    """The client publishes its metadata at an https URL used as client_id: no registration request."""
    slug = slug_of(admin.db)
    docs = oauth_odoo.documents
    url = docs.publish("/oauth/e2e-client.json", {
        "client_id": f"{docs.base_url}/oauth/e2e-client.json", "client_name": "CIMD e2e client",
        "redirect_uris": [CALLBACK], "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none", "client_uri": "https://client.example.com",
    })
    meta = httpx2.get(f"{oauth_odoo.url}/.well-known/oauth-authorization-server").json()
    assert meta["client_id_metadata_document_supported"] is True
    with params(admin, cimd_allow_private_hosts=True):  # the document server is on 127.0.0.1
        async with browser_session(request) as browser:

            async def consent(b):
                assert await b.page.inner_text(".o_ocore_oauth_client") == "CIMD e2e client"
                await approve_with(b, preset="read_only")

            provider, storage = oauth_provider(oauth_odoo, browser, "alice", consent, "/ocore/mcp/stream",
                                               client_metadata_url=url)
            async with oauth_client(oauth_odoo, provider, "/ocore/mcp/stream", "stream") as client:
                assert data_of(await client.call_tool(f"{slug}_count", {"model": "res.users"}))["count"] >= 1
        assert query_of(browser.authorization_url)["client_id"] == url
        assert storage.client_info.client_id == url and storage.client_info.client_secret is None
        clients = admin.search_read("ocore.mcp.oauth.client", [("client_id", "=", url)],
                                    ["name", "registration", "redirect_uris", "client_uri"])
        assert clients == [{"id": clients[0]["id"], "name": "CIMD e2e client", "registration": "cimd",
                            "redirect_uris": CALLBACK, "client_uri": "https://client.example.com"}]
        assert "/oauth/e2e-client.json" in docs.fetches
        # documents that do not describe themselves, or carry a secret, are refused
        _verifier, challenge = pkce_pair()
        for path, document in (
            ("/oauth/other.json", {"client_id": f"{docs.base_url}/oauth/elsewhere.json", "redirect_uris": [CALLBACK]}),
            ("/oauth/secret.json", {"client_id": f"{docs.base_url}/oauth/secret.json", "redirect_uris": [CALLBACK],
                                    "client_secret": "s3cret", "token_endpoint_auth_method": "client_secret_post"}),
            ("/oauth/evil.json", {"client_id": f"{docs.base_url}/oauth/evil.json",
                                  "redirect_uris": ["http://attacker.example.com/cb"]}),
        ):
            bad = docs.publish(path, document)
            resp = httpx2.get(f"{oauth_odoo.url}/oauth/authorize", params={
                "response_type": "code", "client_id": bad, "redirect_uri": CALLBACK, "state": "x",
                "code_challenge": challenge, "code_challenge_method": "S256"})
            assert resp.status_code == 400 and "invalid_client" in resp.text, (path, resp.text[:300])
    # without the setting, a document on a private address is never fetched (no SSRF into the network)
    fetched = len(docs.fetches)
    private = docs.publish("/oauth/private.json", {"client_id": f"{docs.base_url}/oauth/private.json",
                                                    "redirect_uris": [CALLBACK]})
    resp = httpx2.get(f"{oauth_odoo.url}/oauth/authorize", params={
        "response_type": "code", "client_id": private, "redirect_uri": CALLBACK, "state": "x",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    assert resp.status_code == 400 and "invalid_client" in resp.text
    assert len(docs.fetches) == fetched


async def test_deny_in_the_browser_returns_access_denied(oauth_odoo, request):
    raw = RawClient(oauth_odoo, client_name="Denied e2e client")
    try:
        _verifier, challenge = pkce_pair()
        url = f"{oauth_odoo.url}/oauth/authorize?{urlencode(raw.authorize_params(challenge, state='deny-me'))}"
        async with browser_session(request) as browser:
            await browser.page.goto(url)
            assert await browser.login_if_asked("vera")
            assert "/oauth/authorize" in browser.page.url
            await browser.shot("consent-viewer")
            # a viewer's new key can only be read-only
            assert await browser.page.is_disabled("#read_only")
            assert await browser.page.is_checked("#read_only")
            await browser.page.click("button.o_ocore_deny")
            query = query_of(await browser.wait_callback())
        assert (query["error"], query["state"], query["iss"]) == ("access_denied", "deny-me", oauth_odoo.url)
        assert "code" not in query
    finally:
        raw.close()


async def test_consent_shows_what_each_preset_grants_one_read_only_control_and_an_expiry(oauth_odoo, admin, request):
    raw = RawClient(oauth_odoo, client_name="Consent e2e client")
    try:
        verifier, challenge = pkce_pair()
        url = f"{oauth_odoo.url}/oauth/authorize?{urlencode(raw.authorize_params(challenge, state='c-1'))}"
        async with browser_session(request) as browser:
            page = browser.page
            await page.goto(url)
            assert await browser.login_if_asked("alice")
            assert await page.query_selector("#preset_read_only") is None  # read-only is the checkbox alone
            assert await page.locator("#read_only").count() == 1
            boxes = "input[name=categories]"
            offered = await page.eval_on_selector_all(boxes, "els => els.map(e => e.value)")
            assert "orm" in offered and "export" not in offered  # only categories holding a tool
            ticked = "els => els.filter(e => e.checked).map(e => e.value)"
            standard = set(await page.eval_on_selector_all(boxes, ticked))
            assert "orm" in standard and "sql" not in standard and "shell" not in standard
            assert all(await page.eval_on_selector_all(boxes, "els => els.map(e => e.disabled)"))
            help_text = await page.inner_text(".o_ocore_preset_help")
            assert "Standard" in help_text and "Full" in help_text
            await page.check("#preset_full")
            assert set(await page.eval_on_selector_all(boxes, ticked)) == set(offered)
            await page.check("#preset_custom")
            assert not any(await page.eval_on_selector_all(boxes, "els => els.map(e => e.disabled)"))
            assert await page.eval_on_selector_all(boxes, ticked) == []  # custom: the user ticks what to grant
            await page.check("#preset_standard")
            await page.set_checked("#read_only", True)
            await page.select_option("#expiry_days", value="30")
            await browser.shot("consent-presets")
            await page.click("button.o_ocore_approve")
            query = query_of(await browser.wait_callback())
        status, tokens = raw.exchange(query["code"], verifier)
        assert status == 200, tokens
        auth = authorization_of(admin, oauth_odoo.uids["alice"], client_id=raw.client_id)
        key = admin.search_read("ocore.mcp.key", [("id", "=", auth["key_id"][0])],
                                ["name", "read_only", "expiration_date", "category_ids"])[0]
        assert key["read_only"] and key["expiration_date"]
        assert "Consent e2e client" in key["name"] and "alice" in key["name"]
        codes = {c["code"] for c in admin.search_read("ocore.mcp.category", [("id", "in", key["category_ids"])],
                                                       ["code"])}
        assert codes == standard
    finally:
        raw.close()


async def test_reauthorizations_of_one_client_merge(oauth_odoo, admin, raw_client, alice_web):
    """Four connects of one client by one user: one authorization, one key (with the last consent's rights)."""
    for _ in range(3):
        raw_client.tokens_for(alice_web)
    raw_client.tokens_for(alice_web, preset="custom", categories="search")
    auths = admin.search_read("ocore.mcp.oauth.authorization",
                              [("client_id.client_id", "=", raw_client.client_id)], ["key_id"])
    assert len(auths) == 1, auths
    keys = admin.search_read("ocore.mcp.key", [("id", "=", auths[0]["key_id"][0])], ["category_ids", "active"])
    cats = admin.search_read("ocore.mcp.category", [("id", "in", keys[0]["category_ids"])], ["code"])
    assert keys[0]["active"] and [c["code"] for c in cats] == ["search"]


async def test_user_without_mcp_access_cannot_approve(oauth_odoo, request):
    raw = RawClient(oauth_odoo, client_name="No access e2e client")
    try:
        _verifier, challenge = pkce_pair()
        url = f"{oauth_odoo.url}/oauth/authorize?{urlencode(raw.authorize_params(challenge))}"
        async with browser_session(request) as browser:
            await browser.page.goto(url)
            await browser.login_if_asked("otto")
            await browser.shot("consent-no-access")
            assert "You have no MCP access" in await browser.page.inner_text("body")
            assert await browser.page.query_selector("button.o_ocore_approve") is None
    finally:
        raw.close()


# -- refusals ----------------------------------------------------------------------------------------------


@pytest.fixture
def raw_client(oauth_odoo):
    client = RawClient(oauth_odoo)
    yield client
    client.close()


@pytest.fixture
def alice_web(oauth_odoo):
    user = WebUser(oauth_odoo, "alice")
    yield user
    user.close()


async def test_pkce_downgrade_is_refused(oauth_odoo, raw_client, alice_web):
    _verifier, challenge = pkce_pair()
    for extra in ({"code_challenge_method": "plain"}, {"code_challenge_method": None},
                  {"code_challenge": None, "code_challenge_method": None}):
        resp = alice_web.http.get("/oauth/authorize", params=raw_client.authorize_params(challenge, **extra))
        assert resp.status_code == 302, resp.text[:300]
        query = query_of(resp.headers["location"])
        assert query["error"] == "invalid_request", (extra, query)
        assert "code" not in query
    # a code obtained with S256 cannot be redeemed without its verifier, nor with another one: either try
    # burns the code (the right verifier then gets nothing); a code presented with its verifier is redeemed
    for wrong, error in ((None, "invalid_request"), (pkce_pair()[0], "invalid_grant")):
        code, verifier = raw_client.code_for(alice_web)
        status, body = raw_client.exchange(code, wrong)
        assert (status, body["error"]) == (400, error), body
        status, body = raw_client.exchange(code, verifier)
        assert (status, body["error"]) == (400, "invalid_grant"), body
    code, verifier = raw_client.code_for(alice_web)
    status, body = raw_client.exchange(code, verifier)
    assert status == 200, body


async def test_wrong_redirect_uri_is_refused(oauth_odoo, raw_client, alice_web):
    _verifier, challenge = pkce_pair()
    resp = alice_web.http.get("/oauth/authorize", params=raw_client.authorize_params(
        challenge, redirect_uri="https://attacker.example.com/callback"))
    assert resp.status_code == 400 and "location" not in resp.headers  # never sent to an unregistered URI
    assert "invalid_request" in resp.text
    code, verifier = raw_client.code_for(alice_web)
    status, body = raw_client.exchange(code, verifier, redirect_uri="http://127.0.0.1:8639/other")
    assert (status, body["error"]) == (400, "invalid_grant")
    # registering one is refused too
    resp = raw_client.http.post("/oauth/register", json={"client_name": "x",
                                                         "redirect_uris": ["http://attacker.example.com/cb"]})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_redirect_uri"


async def test_replayed_code_is_refused_and_revokes_its_tokens(oauth_odoo, raw_client, alice_web):
    code, verifier = raw_client.code_for(alice_web)
    status, tokens = raw_client.exchange(code, verifier)
    assert status == 200
    assert mcp_status(oauth_odoo, tokens["access_token"])[0] == 200
    status, body = raw_client.exchange(code, verifier)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert mcp_status(oauth_odoo, tokens["access_token"])[0] == 401
    status, body = raw_client.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_expired_token_is_refused_then_refreshed_with_rotation(oauth_odoo, admin, raw_client, alice_web):
    with params(admin, access_token_ttl=2):
        tokens = raw_client.tokens_for(alice_web)
    assert tokens["expires_in"] == 2
    assert mcp_status(oauth_odoo, tokens["access_token"])[0] == 200
    await anyio.sleep(3)
    status, header = mcp_status(oauth_odoo, tokens["access_token"])
    assert status == 401
    assert f'resource_metadata="{oauth_odoo.url}/.well-known/oauth-protected-resource/ocore/mcp/stream"' in header
    status, renewed = raw_client.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"],
                                       resource=f"{oauth_odoo.url}/ocore/mcp/stream")
    assert status == 200, renewed
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert mcp_status(oauth_odoo, renewed["access_token"])[0] == 200
    # the rotated refresh token is spent; presenting it again ends the whole grant
    status, body = raw_client.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")
    assert mcp_status(oauth_odoo, renewed["access_token"])[0] == 401
    status, body = raw_client.token(grant_type="refresh_token", refresh_token=renewed["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_revoked_tokens_are_refused(oauth_odoo, admin, raw_client, alice_web):
    tokens = raw_client.tokens_for(alice_web)
    assert mcp_status(oauth_odoo, tokens["access_token"])[0] == 200
    resp = raw_client.http.post("/oauth/revoke", data={"client_id": raw_client.client_id,
                                                       "token": tokens["access_token"]})
    assert resp.status_code == 200
    assert mcp_status(oauth_odoo, tokens["access_token"])[0] == 401
    status, body = raw_client.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")
    # revoked from the backend: tokens soft-deleted, the auto-created key deactivated
    tokens = raw_client.tokens_for(alice_web)
    auth = authorization_of(admin, oauth_odoo.uids["alice"], client_id=raw_client.client_id)
    assert auth["active"]
    as_user(oauth_odoo, "alice").call("ocore.mcp.oauth.authorization", "action_revoke", [auth["id"]])
    assert mcp_status(oauth_odoo, tokens["access_token"])[0] == 401
    assert key_of(admin, auth["key_id"][0])["active"] is False
    rows = admin.search_read("ocore.mcp.oauth.token", [("authorization_id", "=", auth["id"]),
                                                       ("active", "in", [True, False])],
                             ["active", "revoke_reason"])
    assert rows and all(not r["active"] for r in rows)
    assert {r["revoke_reason"] for r in rows} >= {"authorization_revoked"}


async def test_wrong_audience_is_refused(oauth_odoo, admin, raw_client, alice_web):
    _verifier, challenge = pkce_pair()
    resp = alice_web.http.get("/oauth/authorize", params=raw_client.authorize_params(
        challenge, resource="https://elsewhere.example.com/mcp"))
    assert query_of(resp.headers["location"])["error"] == "invalid_target"
    # a token this server issued for another resource server it federates with is not accepted here
    control = "https://control.example.com/ocore/mcp"
    with params(admin, extra_audiences=control):
        verifier, challenge = pkce_pair()
        location = alice_web.consent(raw_client.authorize_params(challenge, resource=control))
        status, tokens = raw_client.exchange(query_of(location)["code"], verifier, resource=control)
    assert status == 200, tokens
    rows = admin.search_read("ocore.mcp.oauth.token", [("client_id.client_id", "=", raw_client.client_id)],
                             ["resource"], order="id desc", limit=1)
    assert rows[0]["resource"] == control
    status, header = mcp_status(oauth_odoo, tokens["access_token"])
    assert status == 401 and 'error="invalid_token"' in header
    # and a token for this server's resource works on every MCP endpoint of it
    good = raw_client.tokens_for(alice_web)
    for path in ("/ocore/mcp/stream", "/api/mcp/stream"):
        assert mcp_status(oauth_odoo, good["access_token"], path)[0] == 200


# -- device flow ----------------------------------------------------------------------------------------------


async def test_stdio_bridge_without_a_key_uses_the_device_flow(oauth_odoo, admin, request, tmp_path):
    """ocore-mcp-stdio without a key: the device flow's code on stderr, confirmed in the browser; the SDK's
    stdio client then works through it, and a second start reuses the kept tokens."""
    slug = slug_of(admin.db)
    bridge_dir = Path(__file__).resolve().parent.parent / "bridge"
    token_file = tmp_path / "tokens.json"
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "ocore_mcp_stdio", f"{oauth_odoo.url}/ocore/mcp/stream", "--token-file", str(token_file)],
        env={"PYTHONPATH": str(bridge_dir), "PATH": os.environ["PATH"]})
    err_path = tmp_path / "bridge.err"

    async def approve():
        found = None
        for _ in range(600):
            found = re.search(r"open (\S+)\s+and confirm the code (\S+)", err_path.read_text())
            if found:
                break
            await anyio.sleep(0.2)
        assert found, err_path.read_text()
        async with browser_session(request) as browser:
            await browser.page.goto(found.group(1))
            assert await browser.login_if_asked("alice")
            assert await browser.page.inner_text(".o_ocore_user_code") == found.group(2)
            await approve_with(browser, preset="read_only")
            await browser.page.wait_for_selector(".o_ocore_oauth_title")

    with err_path.open("w") as errlog:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(approve)
            async with Client(stdio_client(params, errlog=errlog), mode="legacy", cache=None,
                              read_timeout_seconds=180) as client:
                counted = data_of(await client.call_tool(f"{slug}_count", {"model": "res.users"}))
                assert counted["count"] >= 1
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert "access_token" not in err_path.read_text()
    with err_path.open("w") as errlog:  # the kept tokens: no new code to confirm
        async with Client(stdio_client(params, errlog=errlog), mode="2026-07-28", cache=None,
                          read_timeout_seconds=60) as client:
            assert data_of(await client.call_tool(f"{slug}_count", {"model": "res.users"}))["count"] >= 1
    assert "confirm the code" not in err_path.read_text()


async def test_device_flow(oauth_odoo, admin, request):
    slug = slug_of(admin.db)
    cli = RawClient(oauth_odoo, client_name="e2e CLI", redirect_uris=[], grant_types=[DEVICE_GRANT, "refresh_token"])
    try:
        resp = cli.http.post("/oauth/device/code", data={"client_id": cli.client_id, "scope": "mcp"})
        start = resp.json()
        assert resp.status_code == 200, start
        assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", start["user_code"])
        assert start["expires_in"] == 900 and start["interval"] == 5
        assert start["verification_uri_complete"] == f"{oauth_odoo.url}/oauth/device?user_code={start['user_code']}"
        assert "\u2588" in start["qr_code"]  # the terminal QR code
        (SHOTS / f"{request.node.name}-terminal-qr.txt").write_text(start["qr_code"])
        poll = {"grant_type": DEVICE_GRANT, "device_code": start["device_code"]}
        assert cli.token(**poll) == (400, {"error": "authorization_pending"})
        assert cli.token(**poll) == (400, {"error": "slow_down"})  # polled faster than the interval
        async with browser_session(request) as browser:
            await browser.page.goto(start["verification_uri_complete"])
            assert await browser.login_if_asked("alice")
            assert await browser.page.inner_text(".o_ocore_user_code") == start["user_code"]
            assert await browser.page.query_selector(".o_ocore_qr svg")
            await browser.shot("device-confirm")
            await approve_with(browser, preset="read_only")
            await browser.page.wait_for_selector(".o_ocore_oauth_title")
            await browser.shot("device-done")
            assert "Device connected" in await browser.page.inner_text(".o_ocore_oauth_title")
        interval = 10  # 5 + 5 after the slow_down
        await anyio.sleep(interval)
        status, tokens = cli.token(**poll)
        assert status == 200, tokens
        assert tokens["scope"] == "mcp mcp:read offline_access"
        async with connect(oauth_odoo.url, tokens["access_token"]) as client:
            counted = data_of(await client.call_tool(f"{slug}_count", {"model": "res.users"}))
            assert counted["count"] >= 1
        assert cli.token(**poll)[1]["error"] == "invalid_grant"  # a device code is used once
        # an unapproved code expires
        with params(admin, device_code_ttl=2):
            late = cli.http.post("/oauth/device/code", data={"client_id": cli.client_id}).json()
        assert late["expires_in"] == 2
        await anyio.sleep(3)
        assert cli.token(grant_type=DEVICE_GRANT, device_code=late["device_code"])[1]["error"] == "expired_token"
        # a denied one
        denied = cli.http.post("/oauth/device/code", data={"client_id": cli.client_id}).json()
        web = WebUser(oauth_odoo, "alice")
        try:
            page = web.http.get("/oauth/device", params={"user_code": denied["user_code"]})
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            web.http.post("/oauth/device", data={"csrf_token": csrf, "user_code": denied["user_code"],
                                                 "decision": "deny"})
        finally:
            web.close()
        assert cli.token(grant_type=DEVICE_GRANT, device_code=denied["device_code"])[1]["error"] == "access_denied"
    finally:
        cli.close()


# -- invites ---------------------------------------------------------------------------------------------------


def invite_link(user_api, invite_id):
    action = user_api.call("ocore.mcp.oauth.invite", "action_generate_link", [invite_id])
    return action["context"]["default_url"]  # shown from the action only: stored nowhere


async def test_invite_acceptance(oauth_odoo, admin, request):
    slug = slug_of(admin.db)
    main = oauth_odoo.companies["main"]
    manny = as_user(oauth_odoo, "manny")
    orm = admin.ref("ocore_mcp.category_orm")
    invite_id = manny.create("ocore.mcp.oauth.invite", {
        "name": "Sales analysts", "company_id": main, "read_only": False, "max_uses": 1,
        "category_ids": [(6, 0, [orm])]})
    url = invite_link(manny, invite_id).replace(admin.get_param("web.base.url"), oauth_odoo.url)
    nora = oauth_odoo.uids["nora"]
    user_before = admin.search_read("res.users", [("id", "=", nora)], ["company_ids"])[0]
    assert main not in user_before["company_ids"]
    async with browser_session(request) as browser:
        await browser.page.goto(url)
        assert await browser.login_if_asked("nora")
        await browser.shot("invite")
        permissions = await browser.page.inner_text(".o_ocore_invite_permissions")
        assert "ORM" in permissions
        assert await browser.page.inner_text(".o_ocore_invite_access") == "Read-only"  # new member: Viewer
        assert "as an MCP Viewer" in await browser.page.inner_text("body")
        await browser.page.click("button.o_ocore_accept")
        await browser.page.wait_for_selector(".o_ocore_secret")
        await browser.shot("invite-accepted")
        secret = (await browser.page.inner_text(".o_ocore_secret")).strip()
        # both transports' snippets, each with a copy button, and one for the secret
        snippets = {await el.get_attribute("data-client"): await el.inner_text()
                    for el in await browser.page.query_selector_all(".o_ocore_config")}
        assert set(snippets) == {"claude_desktop", "cursor", "http", "stdio"}
        assert '"type": "sse"' in snippets["claude_desktop"] and '"type": "http"' in snippets["http"]
        assert all(secret in text for text in snippets.values())
        assert await browser.page.locator(".o_ocore_copy").count() == 5
        await browser.page.click(".o_ocore_copy[data-copy=ocore_config_http]")
        # the button says so once the clipboard write (a promise) settled
        await browser.page.wait_for_selector(".o_ocore_copy[data-copy=ocore_config_http]:text-is('Copied')",
                                             timeout=10000)
        # the link is spent
        await browser.page.goto(url)
        await browser.shot("invite-used")
        assert "already" in await browser.page.inner_text(".o_ocore_oauth_error")
    user_after = admin.search_read("res.users", [("id", "=", nora)], ["company_ids"])[0]
    assert main in user_after["company_ids"]
    assert admin.call("res.users", "has_group", [nora], "ocore_mcp.group_mcp_viewer") is True
    assert admin.call("res.users", "has_group", [nora], "ocore_mcp.group_mcp_user") is False
    keys = admin.search_read("ocore.mcp.key", [("oauth_invite_id", "=", invite_id)],
                             ["user_id", "company_id", "read_only", "category_ids", "origin"])
    assert len(keys) == 1
    assert keys[0]["user_id"][0] == nora and keys[0]["company_id"][0] == main
    assert keys[0]["read_only"] is True and keys[0]["origin"] == "invite"
    assert category_codes(admin, keys[0]["category_ids"]) == ["orm"]
    async with connect(oauth_odoo.url, secret) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert f"{slug}_search_read" in names and f"{slug}_get_instance_info" not in names  # orm only
        refused = error_of(await client.call_tool(f"{slug}_create", {"model": "res.partner",
                                                                     "values": {"name": "x"}}))
        assert "write operations blocked" in refused
    assert admin.search_read("ocore.mcp.oauth.invite", [("id", "=", invite_id)], ["state"])[0]["state"] == "used"


async def test_invite_escalation_is_refused(oauth_odoo, admin, request):
    async with connect(oauth_odoo.url, admin.create_key(name="tool lister")) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    admin_tool = "execute_sql"  # reserved to system administrators' keys
    assert f"{slug_of(admin.db)}_{admin_tool}" in names
    manny = as_user(oauth_odoo, "manny")
    # at creation: more than the manager holds
    with pytest.raises(xmlrpc.client.Fault, match="cannot grant more than its author holds"):
        manny.create("ocore.mcp.oauth.invite", {"name": "sneaky", "tool_allowlist": admin_tool})
    with pytest.raises(xmlrpc.client.Fault, match="cannot grant more than its author holds"):
        manny.create("ocore.mcp.oauth.invite", {"name": "elsewhere",
                                                "company_id": oauth_odoo.companies["second"]})
    with pytest.raises(xmlrpc.client.Fault):  # nor in someone else's name
        manny.write("ocore.mcp.oauth.invite", [manny.create("ocore.mcp.oauth.invite", {"name": "mine"})],
                    {"inviter_id": oauth_odoo.uids["carol"]})
    # at acceptance: the author lost the rights the invite grants
    carol = as_user(oauth_odoo, "carol")
    invite_id = carol.create("ocore.mcp.oauth.invite", {"name": "SQL readers", "tool_allowlist": admin_tool})
    url = invite_link(carol, invite_id).replace(admin.get_param("web.base.url"), oauth_odoo.url)
    admin.write("res.users", [oauth_odoo.uids["carol"]], {admin.user_groups_field(): [(3, admin.ref("base.group_system"))]})
    async with browser_session(request) as browser:
        await browser.page.goto(url)
        await browser.login_if_asked("otto")
        await browser.shot("invite-escalation")
        problem = await browser.page.inner_text(".o_ocore_oauth_error")
        assert "reserved to system administrators" in problem
        assert await browser.page.query_selector("button.o_ocore_accept") is None
    # a POST straight to the link is refused the same way, and grants nothing
    web = WebUser(oauth_odoo, "otto")
    try:
        page = web.http.get(urlsplit(url).path)
        assert page.status_code == 403
        resp = web.http.post(urlsplit(url).path, data={"csrf_token": re.search(
            r'csrf_token: "([^"]+)"', page.text).group(1)})
        assert resp.status_code == 403
    finally:
        web.close()
    assert admin.search_read("ocore.mcp.key", [("oauth_invite_id", "=", invite_id)], ["id"]) == []
    otto = oauth_odoo.uids["otto"]
    assert admin.call("res.users", "has_group", [otto], "ocore_mcp.group_mcp_viewer") is False
