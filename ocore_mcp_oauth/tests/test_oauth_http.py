import base64
import contextlib
import hashlib
import http.client
import json
import re
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from odoo import Command, fields
from odoo.addons.ocore_mcp.lib import compat
from odoo.tests import HttpCase, tagged

REDIRECT = "http://127.0.0.1:9999/callback"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


@tagged("post_install", "-at_install")
class TestOAuthHttp(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice = cls.env["res.users"].create({
            "name": "Alice OAuth", "login": "oauth_http_alice", "password": "oauth_http_alice",
            compat.user_groups_field(cls.env["res.users"]): [Command.set([cls.env.ref("base.group_user").id,
                                       cls.env.ref("ocore_mcp.group_mcp_user").id])],
        })

    # -- helpers -----------------------------------------------------------------------

    def post_form(self, path, data, headers=None):
        return self.url_open(path, data=data, headers=headers, allow_redirects=False)

    def json_of(self, resp):
        self.assertIn("application/json", resp.headers.get("Content-Type", ""), resp.text[:300])
        return resp.json()

    def register(self, **metadata):
        body = {"client_name": "HTTP test client", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"], **metadata}
        resp = self.url_open("/oauth/register", data=json.dumps(body), headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 201, resp.text)
        return resp.json()

    def authorize_params(self, client_id, challenge, **extra):
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": "st4te",
                  "code_challenge": challenge, "code_challenge_method": "S256", "scope": "mcp offline_access",
                  "resource": f"{self.base_url()}/ocore/mcp/stream", **extra}
        return {k: v for k, v in params.items() if v is not None}

    def consent(self, params, decision="approve", **form):
        """GET the consent page (logged in), then POST the form like the browser does."""
        page = self.url_open("/oauth/authorize?" + urlencode(params))
        self.assertEqual(page.status_code, 200, page.text[:500])
        self.assertEqual(page.headers["X-Frame-Options"], "DENY")  # the Approve button cannot be framed
        self.assertIn("frame-ancestors 'none'", page.headers["Content-Security-Policy"])
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        data = {"csrf_token": csrf, "decision": decision, "company_id": self.env.company.id, "key_mode": "new",
                "preset": "read_only", **params, **form}
        resp = self.post_form("/oauth/authorize", data)
        self.assertIn(resp.status_code, (302, 303), resp.text[:500])
        location = resp.headers["Location"]
        self.assertTrue(location.startswith(REDIRECT), location)
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def get_code(self, client_id, **form):
        verifier, challenge = pkce()
        self.authenticate("oauth_http_alice", "oauth_http_alice")
        query = self.consent(self.authorize_params(client_id, challenge), **form)
        self.assertEqual(query["state"], "st4te")
        self.assertEqual(query["iss"], self.base_url())
        return query["code"], verifier

    def exchange(self, client_id, code, verifier, **extra):
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id,
                "code_verifier": verifier, "resource": f"{self.base_url()}/ocore/mcp/stream", **extra}
        return self.post_form("/oauth/token", {k: v for k, v in data.items() if v is not None})

    def mcp_initialize(self, token, path="/ocore/mcp/stream"):
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        return self.url_open(path, data=json.dumps(body), headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream"})

    # -- tests -------------------------------------------------------------------------

    def test_discovery_documents(self):
        base = self.base_url()
        resp = self.url_open("/ocore/mcp/stream", data="{}", headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 401)
        self.assertIn(f'resource_metadata="{base}/.well-known/oauth-protected-resource/ocore/mcp/stream"',
                      resp.headers["WWW-Authenticate"])
        resp = self.url_open("/api/mcp/sse")
        self.assertIn(f'resource_metadata="{base}/.well-known/oauth-protected-resource/api/mcp/sse"',
                      resp.headers["WWW-Authenticate"])
        for suffix, resource in (("", "/ocore/mcp"), ("/ocore/mcp/stream", "/ocore/mcp/stream"),
                                 ("/ocore/mcp/sse", "/ocore/mcp/sse"), ("/api/mcp/sse", "/api/mcp/sse"),
                                 ("/api/mcp/stream", "/api/mcp/stream")):
            prm = self.json_of(self.url_open(f"/.well-known/oauth-protected-resource{suffix}"))
            self.assertEqual(prm["resource"], f"{base}{resource}")
            self.assertEqual(prm["authorization_servers"], [base])
            self.assertEqual(prm["scopes_supported"], ["mcp"])
        self.assertEqual(self.url_open("/.well-known/oauth-protected-resource/web").status_code, 404)
        meta = self.json_of(self.url_open("/.well-known/oauth-authorization-server"))
        AuthorizationServerMetadata(meta).validate()
        self.assertEqual(meta["issuer"], base)
        # one scope per category that holds a tool (the records without a tool are not offered)
        self.assertIn("mcp:orm", meta["scopes_supported"])
        self.assertNotIn("mcp:export", meta["scopes_supported"])
        self.assertEqual(meta["code_challenge_methods_supported"], ["S256"])
        self.assertEqual(meta["response_types_supported"], ["code"])
        self.assertNotIn("implicit", meta["grant_types_supported"])
        self.assertNotIn("password", meta["grant_types_supported"])
        self.assertIn(DEVICE_GRANT, meta["grant_types_supported"])
        self.assertEqual(meta["registration_endpoint"], f"{base}/oauth/register")
        self.assertTrue(meta["authorization_response_iss_parameter_supported"])

    def test_401_says_why(self):
        """No Authorization header: missing credentials; an OAuth access token expired or revoked says so."""
        resp = self.url_open("/ocore/mcp/stream", data="{}", headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 401)
        self.assertIn("missing credentials", resp.json()["error"]["message"])
        self.assertIn("missing credentials", resp.headers["WWW-Authenticate"])
        unknown = self.mcp_initialize("ocore_nosuchkey_" + "x" * 40)
        self.assertIn("unknown or malformed API key", unknown.json()["error"]["message"])
        client = self.register()
        code, verifier = self.get_code(client["client_id"])
        tokens = self.json_of(self.exchange(client["client_id"], code, verifier))
        self.assertEqual(self.mcp_initialize(tokens["access_token"]).status_code, 200)
        record = self.env["ocore.mcp.oauth.token"]._ocore_find(tokens["access_token"])
        record.access_expires_at = fields.Datetime.subtract(fields.Datetime.now(), seconds=5)
        expired = self.mcp_initialize(tokens["access_token"])
        self.assertEqual(expired.status_code, 401)
        self.assertIn("token expired", expired.json()["error"]["message"])
        record.access_expires_at = fields.Datetime.add(fields.Datetime.now(), hours=1)
        record._ocore_revoke("client")
        revoked = self.mcp_initialize(tokens["access_token"])
        self.assertEqual(revoked.status_code, 401)
        self.assertIn("token revoked", revoked.json()["error"]["message"])

    def test_code_flow_token_and_refresh_rotation(self):
        client = self.register()
        self.assertNotIn("client_secret", client)
        # not logged in: the request is validated, then Odoo's login with a way back
        verifier, challenge = pkce()
        params = self.authorize_params(client["client_id"], challenge)
        resp = self.url_open("/oauth/authorize?" + urlencode(params), allow_redirects=False)
        self.assertEqual(resp.status_code, 303)
        location = urlsplit(resp.headers["Location"])
        self.assertEqual(location.path, "/web/login")
        self.assertTrue(parse_qs(location.query)["redirect"][0].startswith("/oauth/authorize?"))
        code, verifier = self.get_code(client["client_id"])
        resp = self.exchange(client["client_id"], code, verifier)
        tokens = self.json_of(resp)
        self.assertEqual(resp.status_code, 200, tokens)
        self.assertEqual(resp.headers.get("Cache-Control"), "no-store")
        self.assertEqual(tokens["token_type"], "Bearer")
        self.assertEqual(tokens["scope"], "mcp mcp:read offline_access")
        auth = self.env["ocore.mcp.oauth.authorization"].search([("user_id", "=", self.alice.id)])
        self.assertEqual(len(auth), 1)
        self.assertEqual(auth.key_id.origin, "oauth")
        self.assertTrue(auth.key_id.read_only)
        token = self.env["ocore.mcp.oauth.token"].search([("authorization_id", "=", auth.id)])
        self.assertEqual(token.resource, f"{self.base_url()}/ocore/mcp/stream")
        # the MCP endpoints accept it, as the key it is bound to
        resp = self.mcp_initialize(tokens["access_token"])
        self.assertEqual(resp.status_code, 200, resp.text)
        session = self.env["ocore.mcp.session"].search([("session_id", "=", resp.headers["Mcp-Session-Id"])])
        self.assertEqual(session.key_id, auth.key_id)
        self.assertEqual(session.oauth_authorization_id, auth)
        self.assertEqual(self.mcp_initialize(tokens["access_token"], "/api/mcp/stream").status_code, 200)
        # refresh: a new pair; the old refresh token is rotated out
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                   "client_id": client["client_id"]}
        renewed = self.json_of(self.post_form("/oauth/token", refresh))
        self.assertNotEqual(renewed["access_token"], tokens["access_token"])
        self.assertNotEqual(renewed["refresh_token"], tokens["refresh_token"])
        self.assertEqual(self.mcp_initialize(renewed["access_token"]).status_code, 200)
        self.assertEqual(self.mcp_initialize(tokens["access_token"]).status_code, 401)  # rotated with its refresh
        again = self.post_form("/oauth/token", refresh)
        self.assertEqual(again.status_code, 400)
        self.assertEqual(again.json()["error"], "invalid_grant")
        # that reuse of a rotated refresh token ended the whole grant
        self.assertEqual(self.mcp_initialize(renewed["access_token"]).status_code, 401)
        reused = self.env["ocore.mcp.oauth.token"].with_context(active_test=False).search(
            [("authorization_id", "=", auth.id), ("revoke_reason", "=", "refresh_reused")])
        self.assertTrue(reused)

    def test_unknown_scopes_are_ignored(self):
        client = self.register(scope="mcp someclient:thing")
        self.assertEqual(client["scope"], "mcp")  # registered, unknown scope values dropped
        verifier, challenge = pkce()
        self.authenticate("oauth_http_alice", "oauth_http_alice")
        params = self.authorize_params(client["client_id"], challenge, scope="mcp someclient:thing offline_access")
        page = self.url_open("/oauth/authorize?" + urlencode(params))
        self.assertEqual(page.status_code, 200)
        self.assertNotIn("someclient:thing", page.text.split("o_ocore_oauth_scopes")[1].split("</ul>")[0])
        query = self.consent(params)
        tokens = self.json_of(self.exchange(client["client_id"], query["code"], verifier))
        self.assertEqual(tokens["scope"], "mcp mcp:read offline_access")

    def test_confidential_client_authenticates(self):
        client = self.register(token_endpoint_auth_method="client_secret_basic")
        self.assertTrue(client["client_secret"])
        code, verifier = self.get_code(client["client_id"])
        no_secret = self.exchange(client["client_id"], code, verifier)
        self.assertEqual(no_secret.status_code, 401)
        self.assertEqual(no_secret.json()["error"], "invalid_client")
        basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
        resp = self.url_open("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier,
        }, headers={"Authorization": f"Basic {basic}"}, allow_redirects=False)
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertTrue(resp.json()["access_token"].startswith("ocoat_"))

    def test_authorization_request_refusals(self):
        client = self.register()
        cid = client["client_id"]
        self.authenticate("oauth_http_alice", "oauth_http_alice")
        _verifier, challenge = pkce()

        def redirect_error(**extra):
            resp = self.url_open("/oauth/authorize?" + urlencode(self.authorize_params(cid, challenge, **extra)),
                                 allow_redirects=False)
            self.assertEqual(resp.status_code, 302, resp.text[:300])
            query = parse_qs(urlsplit(resp.headers["Location"]).query)
            self.assertEqual(query["state"], ["st4te"])
            self.assertEqual(query["iss"], [self.base_url()])
            return query["error"][0], query.get("error_description", [""])[0]

        self.assertEqual(redirect_error(code_challenge_method="plain")[0], "invalid_request")
        self.assertEqual(redirect_error(code_challenge_method=None)[0], "invalid_request")
        self.assertEqual(redirect_error(code_challenge=None, code_challenge_method=None)[0], "invalid_request")
        self.assertEqual(redirect_error(resource="https://elsewhere.example.com/mcp")[0], "invalid_target")
        self.assertEqual(redirect_error(response_type="token")[0], "unsupported_response_type")
        # an unregistered redirect URI is never redirected to
        resp = self.url_open("/oauth/authorize?" + urlencode(self.authorize_params(
            cid, challenge, redirect_uri="https://attacker.example.com/cb")), allow_redirects=False)
        self.assertEqual(resp.status_code, 400)
        self.assertNotIn("Location", resp.headers)
        self.assertIn("invalid_request", resp.text)
        resp = self.url_open("/oauth/authorize?" + urlencode(self.authorize_params("unknown", challenge)),
                             allow_redirects=False)
        self.assertEqual(resp.status_code, 400)
        self.assertIn("invalid_client", resp.text)
        # deny
        query = self.consent(self.authorize_params(cid, challenge), decision="deny")
        self.assertEqual(query["error"], "access_denied")
        self.assertEqual(query["iss"], self.base_url())
        self.assertNotIn("code", query)

    def test_token_request_refusals(self):
        client = self.register()
        cid = client["client_id"]
        # each refused exchange burns its code: the right verifier then gets nothing either
        for wrong, error in (({"verifier": "x" * 50}, "invalid_grant"), ({"verifier": None}, "invalid_request"),
                             ({"redirect_uri": "http://127.0.0.1:9999/other"}, "invalid_grant"),
                             ({"resource": "https://other.example.com/mcp"}, "invalid_target")):
            code, verifier = self.get_code(cid)
            args = {"verifier": verifier, **wrong}
            refused = self.json_of(self.exchange(cid, code, args.pop("verifier"), **args))
            self.assertEqual(refused["error"], error, wrong)
            retry = self.exchange(cid, code, verifier)
            self.assertEqual((retry.status_code, retry.json()["error"]), (400, "invalid_grant"), wrong)
        code, verifier = self.get_code(cid)
        first = self.exchange(cid, code, verifier)
        self.assertEqual(first.status_code, 200, first.text)
        access = first.json()["access_token"]
        self.assertEqual(self.mcp_initialize(access).status_code, 200)
        replay = self.exchange(cid, code, verifier)
        self.assertEqual(replay.status_code, 400)
        self.assertEqual(replay.json()["error"], "invalid_grant")
        self.assertEqual(self.mcp_initialize(access).status_code, 401)  # tokens of a replayed code are revoked
        # an expired code
        code2, verifier2 = self.get_code(cid)
        record = self.env["ocore.mcp.oauth.code"].search([], limit=1, order="id desc")
        record.expires_at = fields.Datetime.now() - timedelta(seconds=1)
        self.assertEqual(self.json_of(self.exchange(cid, code2, verifier2))["error"], "invalid_grant")
        self.assertEqual(self.json_of(self.post_form("/oauth/token", {"grant_type": "password", "client_id": cid,
                                                                     "username": "a", "password": "b"}))["error"],
                         "unsupported_grant_type")

    def test_revocation_endpoint(self):
        client = self.register()
        code, verifier = self.get_code(client["client_id"])
        tokens = self.exchange(client["client_id"], code, verifier).json()
        self.assertEqual(self.mcp_initialize(tokens["access_token"]).status_code, 200)
        resp = self.post_form("/oauth/revoke", {"token": tokens["refresh_token"], "token_type_hint": "refresh_token",
                                                "client_id": client["client_id"]})
        self.assertEqual(resp.status_code, 200, resp.text)
        resp = self.mcp_initialize(tokens["access_token"])
        self.assertEqual(resp.status_code, 401)
        self.assertIn("resource_metadata=", resp.headers["WWW-Authenticate"])
        refreshed = self.post_form("/oauth/token", {"grant_type": "refresh_token", "client_id": client["client_id"],
                                                    "refresh_token": tokens["refresh_token"]})
        self.assertEqual(refreshed.json()["error"], "invalid_grant")
        # unknown tokens are acknowledged (RFC 7009 §2.2)
        self.assertEqual(self.post_form("/oauth/revoke", {"token": "nope", "client_id": client["client_id"]})
                         .status_code, 200)

    def test_registration_refusals(self):
        def register(body):
            return self.url_open("/oauth/register", data=json.dumps(body),
                                 headers={"Content-Type": "application/json"})

        self.assertEqual(register({"client_name": "x", "redirect_uris": ["http://evil.example.com/cb"]}).json()
                         ["error"], "invalid_redirect_uri")
        self.assertEqual(register({"client_name": "x"}).json()["error"], "invalid_redirect_uri")
        self.assertEqual(register({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}).json()["error"],
                         "invalid_client_metadata")
        self.assertEqual(register({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"})
                         .json()["error"], "invalid_client_metadata")
        self.assertEqual(self.url_open("/oauth/register", data="not json",
                                       headers={"Content-Type": "application/json"}).status_code, 400)
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp_oauth.registration_enabled", "False")
        resp = register({"client_name": "x", "redirect_uris": [REDIRECT]})
        self.assertEqual(resp.json()["error"], "access_denied")
        meta = self.url_open("/.well-known/oauth-authorization-server").json()
        self.assertNotIn("registration_endpoint", meta)

    def test_device_flow(self):
        client = self.register(grant_types=[DEVICE_GRANT, "refresh_token"], redirect_uris=[])
        cid = client["client_id"]
        start = self.json_of(self.post_form("/oauth/device/code", {"client_id": cid, "scope": "mcp"}))
        self.assertRegex(start["user_code"], r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")
        self.assertEqual(start["verification_uri"], f"{self.base_url()}/oauth/device")
        self.assertEqual(start["verification_uri_complete"],
                         f"{self.base_url()}/oauth/device?user_code={start['user_code']}")
        self.assertEqual(start["expires_in"], 900)
        self.assertEqual(start["interval"], 5)
        self.assertIn("\u2588", start["qr_code"])  # a QR code drawn with block characters
        poll = {"grant_type": DEVICE_GRANT, "device_code": start["device_code"], "client_id": cid}
        self.assertEqual(self.post_form("/oauth/token", poll).json()["error"], "authorization_pending")
        self.assertEqual(self.post_form("/oauth/token", poll).json()["error"], "slow_down")
        # the user confirms the code in the browser
        self.authenticate("oauth_http_alice", "oauth_http_alice")
        empty = self.url_open("/oauth/device")  # the code field's placeholder is no real-looking code
        self.assertIn('placeholder="XXXX-XXXX"', empty.text)
        self.assertNotIn("BCKF-HMLT", empty.text)
        page = self.url_open(f"/oauth/device?user_code={start['user_code'].lower()}")
        self.assertEqual(page.status_code, 200)
        self.assertIn(start["user_code"], page.text)
        self.assertIn("<svg", page.text)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        resp = self.post_form("/oauth/device", {"csrf_token": csrf, "user_code": start["user_code"],
                                                "decision": "approve", "company_id": self.env.company.id,
                                                "key_mode": "new", "preset": "standard"})
        self.assertEqual(resp.status_code, 200)
        self.assertIn("Device connected", resp.text)
        device = self.env["ocore.mcp.oauth.device"].search([("user_code", "=", start["user_code"])])
        device.last_poll_at = fields.Datetime.now() - timedelta(seconds=60)
        tokens = self.json_of(self.post_form("/oauth/token", poll))
        self.assertIn("access_token", tokens, tokens)
        self.assertIn("refresh_token", tokens)
        self.assertEqual(self.mcp_initialize(tokens["access_token"]).status_code, 200)
        self.assertEqual(device.status, "consumed")
        self.assertEqual(self.post_form("/oauth/token", poll).json()["error"], "invalid_grant")
        # expired and denied requests
        late = self.json_of(self.post_form("/oauth/device/code", {"client_id": cid}))
        self.env["ocore.mcp.oauth.device"].search([("user_code", "=", late["user_code"])]).expires_at = (
            fields.Datetime.now() - timedelta(seconds=1))
        self.assertEqual(self.post_form("/oauth/token", {**poll, "device_code": late["device_code"]}).json()
                         ["error"], "expired_token")
        denied = self.json_of(self.post_form("/oauth/device/code", {"client_id": cid}))
        page = self.url_open(f"/oauth/device?user_code={denied['user_code']}")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        self.post_form("/oauth/device", {"csrf_token": csrf, "user_code": denied["user_code"], "decision": "deny"})
        self.assertEqual(self.post_form("/oauth/token", {**poll, "device_code": denied["device_code"]}).json()
                         ["error"], "access_denied")
        # a client not registered for the device grant
        web = self.register()
        refused = self.post_form("/oauth/device/code", {"client_id": web["client_id"]})
        self.assertEqual(refused.json()["error"], "unauthorized_client")

    def test_device_user_code_lockout(self):
        client = self.register(grant_types=[DEVICE_GRANT], redirect_uris=[])
        start = self.json_of(self.post_form("/oauth/device/code", {"client_id": client["client_id"]}))
        self.authenticate("oauth_http_alice", "oauth_http_alice")
        wrong = "BBBB-BBBB" if start["user_code"] != "BBBB-BBBB" else "CCCC-CCCC"
        page = self.url_open(f"/oauth/device?user_code={start['user_code']}")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        for _i in range(10):
            self.assertEqual(self.url_open(f"/oauth/device?user_code={wrong}").status_code, 400)
        # locked out: even the right code is not looked up, for this user and from this address
        page = self.url_open(f"/oauth/device?user_code={start['user_code']}")
        self.assertEqual(page.status_code, 429)
        self.assertIn("Too many wrong codes", page.text)
        self.assertNotIn(client["client_name"], page.text)
        self.env.cr.execute("SELECT subject, count(*) FROM ocore_mcp_oauth_device_miss GROUP BY subject")
        self.assertEqual(dict(self.env.cr.fetchall()), {"ip:127.0.0.1": 10, f"user:{self.alice.id}": 10})
        resp = self.post_form("/oauth/device", {"csrf_token": csrf, "user_code": start["user_code"],
                                                "decision": "approve", "company_id": self.env.company.id,
                                                "key_mode": "new", "preset": "standard"})
        self.assertEqual(resp.status_code, 429)
        device = self.env["ocore.mcp.oauth.device"].search([("user_code", "=", start["user_code"])])
        self.assertEqual(device.status, "pending")
        # the lockout ends once the misses are older than the window
        self.env.cr.execute("UPDATE ocore_mcp_oauth_device_miss SET missed_at = missed_at - interval '16 minutes'")
        page = self.url_open(f"/oauth/device?user_code={start['user_code']}")
        self.assertEqual(page.status_code, 200, page.text[:300])
        self.env["ocore.mcp.oauth.device"]._gc_old_device_codes()
        self.env.cr.execute("SELECT count(*) FROM ocore_mcp_oauth_device_miss")
        self.assertEqual(self.env.cr.fetchone()[0], 0)

    def test_origin_and_host(self):
        """MCP 2025-11-25: a foreign Origin is refused on every endpoint; URLs come from web.base.url,
        never from the Host header; CORS headers only for the origins an administrator allowed."""
        base = self.base_url()
        evil = {"Origin": "http://evil.example.com"}
        for path in ("/.well-known/oauth-authorization-server", "/.well-known/oauth-protected-resource",
                     "/.well-known/oauth-protected-resource/ocore/mcp/stream"):
            self.assertEqual(self.url_open(path, headers=evil).status_code, 403, path)
            own = self.url_open(path, headers={"Origin": base})
            self.assertEqual(own.status_code, 200, path)
            self.assertNotIn("Access-Control-Allow-Origin", own.headers)
            forged = self.json_of(self.url_open(path, headers={"Host": "evil.example.com"}))
            self.assertNotIn("evil", json.dumps(forged), path)
            self.assertIn(base, json.dumps(forged))
        for path in ("/oauth/token", "/oauth/register", "/oauth/revoke", "/oauth/device/code"):
            resp = self.post_form(path, {"client_id": "x"}, headers=evil)
            self.assertEqual(resp.status_code, 403, path)
            self.assertEqual(resp.json()["error"], "access_denied")
            self.assertEqual(self.opener.options(base + path, headers=evil).status_code, 403)
        resp = self.url_open("/ocore/mcp/stream", data="{}", headers={"Content-Type": "application/json",
                                                                      "Host": "evil.example.com"})
        self.assertEqual(resp.status_code, 401)
        self.assertIn(f'resource_metadata="{base}/.well-known/', resp.headers["WWW-Authenticate"])
        self.assertNotIn("evil", resp.headers["WWW-Authenticate"])
        # a device flow started through another Host name (a loopback one: Authlib refuses plain HTTP to
        # others) still points the user at this server's public URL
        client = self.register(grant_types=[DEVICE_GRANT], redirect_uris=[])
        other_host = f"localhost:{urlsplit(base).port}"
        start = self.json_of(self.post_form("/oauth/device/code", {"client_id": client["client_id"]},
                                            headers={"Host": other_host}))
        self.assertEqual(start["verification_uri"], f"{base}/oauth/device")
        self.assertNotIn("localhost", json.dumps(start))
        # a machine endpoint's body over 64 KB is refused before it is read
        parts = urlsplit(base)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        # 19.0's HttpCase answers 400 to a request it did not allow (url_open allows its own)
        allow = getattr(self, "allow_requests", None)
        allowed = allow(all_requests=True) if allow else contextlib.nullcontext()
        with allowed:
            try:
                conn.putrequest("POST", "/oauth/register")
                conn.putheader("Content-Type", "application/json")
                conn.putheader("Content-Length", str(50 * 1024 * 1024))
                conn.endheaders()
                self.assertEqual(conn.getresponse().status, 413)
            finally:
                conn.close()
        # an origin the administrator allowed gets CORS headers naming it
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp.allowed_origins", "https://app.example.com")
        allowed = {"Origin": "https://app.example.com"}
        meta = self.url_open("/.well-known/oauth-authorization-server", headers=allowed)
        self.assertEqual(meta.status_code, 200)
        self.assertEqual(meta.headers["Access-Control-Allow-Origin"], "https://app.example.com")
        preflight = self.opener.options(base + "/oauth/token", headers=allowed)
        self.assertEqual(preflight.status_code, 204)
        self.assertEqual(preflight.headers["Access-Control-Allow-Origin"], "https://app.example.com")
        self.assertEqual(self.opener.options(base + "/oauth/token", headers=evil).status_code, 403)
        # the consent form cannot be posted from another site (on top of the CSRF token)
        self.authenticate("oauth_http_alice", "oauth_http_alice")
        page = self.url_open(f"/oauth/device?user_code={start['user_code']}")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        resp = self.post_form("/oauth/device", {"csrf_token": csrf, "user_code": start["user_code"],
                                                "decision": "approve", "company_id": self.env.company.id,
                                                "key_mode": "new", "preset": "standard"}, headers=evil)
        self.assertEqual(resp.status_code, 403)
        device = self.env["ocore.mcp.oauth.device"].search([("user_code", "=", start["user_code"])])
        self.assertEqual(device.status, "pending")

    def test_invite_page(self):
        admin = self.env.ref("base.user_admin")
        invite = self.env["ocore.mcp.oauth.invite"].with_user(admin).create({"name": "Readers", "read_only": True})
        token = invite._ocore_new_token()
        newcomer = self.env["res.users"].create({
            "name": "Newcomer", "login": "oauth_http_new", "password": "oauth_http_new",
            compat.user_groups_field(self.env["res.users"]): [Command.set([self.env.ref("base.group_user").id])],
        })
        resp = self.url_open(f"/oauth/invite/{token}", allow_redirects=False)
        self.assertEqual(resp.status_code, 303)
        self.assertIn("/web/login", resp.headers["Location"])
        self.assertEqual(self.url_open("/oauth/invite/ocinv_nope_x").status_code, 404)
        self.authenticate("oauth_http_new", "oauth_http_new")
        page = self.url_open(f"/oauth/invite/{token}")
        self.assertEqual(page.status_code, 200)
        self.assertIn("Readers", page.text)
        self.assertIn("as an MCP Viewer", page.text)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        # whatever the form says, the key gets the invite's permissions
        resp = self.post_form(f"/oauth/invite/{token}", {"csrf_token": csrf, "read_only": "0",
                                                         "category_ids": "shell"})
        self.assertEqual(resp.status_code, 200)
        secret = re.search(r"(ocore_[0-9a-f]{10}_[\w-]+)", resp.text).group(1)
        key = self.env["ocore.mcp.key"]._ocore_find_by_token(secret)
        self.assertEqual(key.user_id, newcomer)
        self.assertTrue(key.read_only)
        self.assertFalse(key.category_ids)
        self.assertTrue(newcomer.has_group("ocore_mcp.group_mcp_viewer"))
        again = self.url_open(f"/oauth/invite/{token}")
        self.assertEqual(again.status_code, 403)
        self.assertIn("already been used", again.text)
