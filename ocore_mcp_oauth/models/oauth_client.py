import hmac
import ipaddress
import json
import logging
import secrets
import socket
from datetime import timedelta
from urllib.parse import urlsplit

from odoo import _, api, fields, models
from odoo.addons.ocore_mcp.lib import compat
from odoo.addons.ocore_mcp.models.mcp_key import hash_token
from odoo.exceptions import UserError, ValidationError

from ..lib.authserver import param_enabled
from ..lib.resource import redirect_uri_problem

_logger = logging.getLogger(__name__)

CIMD_MAX_BYTES = 10 * 1024
CIMD_TIMEOUT = (3, 5)  # connect, read (seconds)
CIMD_REFRESH = timedelta(hours=24)


class MetadataDocumentError(Exception):
    """A client ID metadata document that cannot be used (fetch failed or invalid)."""

GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a name, not a secret
GRANT_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
SUPPORTED_GRANT_TYPES = (GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, GRANT_DEVICE_CODE)
AUTH_METHODS = [
    ("none", "None (public client, PKCE)"),
    ("client_secret_basic", "Client secret (HTTP Basic)"),
    ("client_secret_post", "Client secret (form field)"),
]


@compat.table_constraints(("client_id_unique", "unique(client_id)", "A client ID must be unique."))
class OAuthClient(models.Model):
    _name = "ocore.mcp.oauth.client"
    _description = "MCP OAuth Client"
    _order = "create_date desc, id desc"

    name = fields.Char(required=True, help="The name shown on the consent page (client_name).")
    client_id = fields.Char(
        string="Client ID", required=True, index=True, readonly=True, copy=False,
        default=lambda self: secrets.token_urlsafe(24),
    )
    client_secret_hash = fields.Char(readonly=True, copy=False, groups=fields.NO_ACCESS)
    has_secret = fields.Boolean(compute="_compute_has_secret")
    token_endpoint_auth_method = fields.Selection(
        AUTH_METHODS, string="Client authentication", required=True, default="none",
        help="How the client authenticates at the token endpoint. Public clients (none) rely on PKCE.",
    )
    redirect_uris = fields.Text(
        string="Redirect URIs", help="One per line. Exact match, except the port of loopback http URIs."
    )
    grant_types = fields.Char(
        default=f"{GRANT_AUTHORIZATION_CODE} {GRANT_REFRESH_TOKEN}",
        help="Space separated: authorization_code, refresh_token, urn:ietf:params:oauth:grant-type:device_code",
    )
    scope = fields.Char(help="Scopes the client registered for (informative: the consent decides).")
    logo_uri = fields.Char(string="Logo URL")
    client_uri = fields.Char(string="Website")
    tos_uri = fields.Char(string="Terms of service")
    policy_uri = fields.Char(string="Privacy policy")
    software_id = fields.Char()
    software_version = fields.Char()
    registration = fields.Selection(
        [("dcr", "Dynamic registration"), ("admin", "Registered by an administrator"),
         ("cimd", "Client ID metadata document")],
        default="admin", required=True, readonly=True,
    )
    metadata_json = fields.Text(string="Registered metadata", readonly=True, copy=False)
    metadata_fetched_at = fields.Datetime(readonly=True, copy=False)
    active = fields.Boolean(default=True, help="Archive the client to refuse every new authorization and token.")
    authorization_ids = fields.One2many("ocore.mcp.oauth.authorization", "client_id", string="Authorizations")
    authorization_count = fields.Integer(compute="_compute_counts")
    last_used = fields.Datetime(readonly=True, help="Last time a token was issued to this client.")

    @api.depends("token_endpoint_auth_method")
    def _compute_has_secret(self):
        for client in self:
            client.has_secret = bool(client.sudo().client_secret_hash)

    def _compute_counts(self):
        data = self.env["ocore.mcp.oauth.authorization"]._read_group(
            [("client_id", "in", self.ids)], ["client_id"], ["__count"]
        )
        counts = {client.id: count for client, count in data}
        for client in self:
            client.authorization_count = counts.get(client.id, 0)

    @api.constrains("redirect_uris")
    def _check_redirect_uris(self):
        for client in self:
            for uri in client._ocore_redirect_uris():
                problem = redirect_uri_problem(uri)
                if problem:
                    raise ValidationError(_("Redirect URI %(uri)s: %(problem)s", uri=uri, problem=problem))

    @api.constrains("grant_types")
    def _check_grant_types(self):
        for client in self:
            unknown = set(client._ocore_grant_types()) - set(SUPPORTED_GRANT_TYPES)
            if unknown:
                raise ValidationError(_("Unsupported grant types: %s", ", ".join(sorted(unknown))))

    def _ocore_redirect_uris(self):
        self.ensure_one()
        return [line.strip() for line in (self.redirect_uris or "").splitlines() if line.strip()]

    def _ocore_grant_types(self):
        self.ensure_one()
        return (self.grant_types or "").split()

    def _ocore_check_secret(self, secret):
        """Constant-time check of a client secret against its stored hash."""
        self.ensure_one()
        stored = self.sudo().client_secret_hash
        return bool(stored and secret) and hmac.compare_digest(stored, hash_token(secret))

    def _ocore_set_secret(self):
        """Generate a client secret, keep its hash, return it (shown once)."""
        self.ensure_one()
        secret = secrets.token_urlsafe(32)
        self.sudo().write({"client_secret_hash": hash_token(secret)})
        return secret

    @api.model
    def _ocore_find(self, client_id):
        """The active client with this client_id (sudo), or an empty recordset."""
        if not client_id or not isinstance(client_id, str) or len(client_id) > 2000:
            return self.sudo().browse()
        return self.sudo().search([("client_id", "=", client_id)], limit=1)

    # -- client ID metadata documents ------------------------------------------------------

    @api.model
    def _ocore_cimd_enabled(self):
        return param_enabled(self.env, "ocore_mcp_oauth.cimd_enabled")

    @api.model
    def _ocore_is_metadata_url(self, client_id):
        """A client_id that is a client ID metadata document URL: https, with a path, no fragment/userinfo."""
        if not isinstance(client_id, str) or len(client_id) > 2000:
            return False
        parts = urlsplit(client_id)
        return (parts.scheme == "https" and bool(parts.hostname) and parts.path not in ("", "/")
                and not parts.fragment and not parts.username and not parts.password)

    @api.model
    def _ocore_find_or_fetch(self, client_id):
        """The client of ``client_id``; an https URL client_id is resolved through its metadata document
        (fetched, validated, cached one day), as the MCP authorization spec describes."""
        client = self._ocore_find(client_id)
        if client and client.registration != "cimd":
            return client
        if not self._ocore_cimd_enabled() or not self._ocore_is_metadata_url(client_id):
            return client
        if client and client.metadata_fetched_at and client.metadata_fetched_at > fields.Datetime.now() - CIMD_REFRESH:
            return client
        try:
            vals = self._ocore_metadata_document_values(client_id, self._ocore_fetch_metadata_document(client_id))
        except MetadataDocumentError as exc:
            _logger.info("client ID metadata document %s refused: %s", client_id, exc)
            return self.sudo().browse()
        if client:
            client.sudo().write(vals)
            return client
        return self.sudo().create({**vals, "client_id": client_id, "registration": "cimd"})

    @api.model
    def _ocore_fetch_metadata_document(self, url):
        """GET the document: no redirect, bounded size and time, and (unless allowed by the setting
        ``ocore_mcp_oauth.cimd_allow_private_hosts``) only from public addresses (no SSRF into the LAN)."""
        import requests

        parts = urlsplit(url)
        allow_private = param_enabled(self.env, "ocore_mcp_oauth.cimd_allow_private_hosts")
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise MetadataDocumentError(f"cannot resolve {parts.hostname}: {exc}") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global and not allow_private:
                raise MetadataDocumentError(f"{parts.hostname} resolves to a non-public address {address}")
        try:
            with requests.get(url, timeout=CIMD_TIMEOUT, allow_redirects=False, stream=True,
                              headers={"Accept": "application/json"}) as resp:
                if resp.status_code != 200:
                    raise MetadataDocumentError(f"HTTP {resp.status_code}")
                body = b""
                for chunk in resp.iter_content(4096):
                    body += chunk
                    if len(body) > CIMD_MAX_BYTES:
                        raise MetadataDocumentError("document too large")
        except requests.RequestException as exc:
            raise MetadataDocumentError(f"fetch failed: {exc}") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise MetadataDocumentError("not JSON") from None
        if not isinstance(document, dict):
            raise MetadataDocumentError("not a JSON object")
        return document

    @api.model
    def _ocore_metadata_document_values(self, url, document):
        """Client values from a metadata document, refused unless it is a valid public client's."""
        if document.get("client_id") != url:
            raise MetadataDocumentError("its client_id is not the document's URL")
        if "client_secret" in document or "client_secret_expires_at" in document:
            raise MetadataDocumentError("a metadata document must not carry a client secret")
        method = document.get("token_endpoint_auth_method") or "none"
        if method != "none":
            raise MetadataDocumentError(f"token_endpoint_auth_method {method!r} is not supported (only 'none')")
        uris = document.get("redirect_uris")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            raise MetadataDocumentError("redirect_uris must be a non-empty list")
        for uri in uris:
            problem = redirect_uri_problem(uri)
            if problem:
                raise MetadataDocumentError(f"redirect URI {uri}: {problem}")
        grant_types = document.get("grant_types") or ["authorization_code"]
        if not isinstance(grant_types, list) or not set(grant_types) <= set(SUPPORTED_GRANT_TYPES):
            raise MetadataDocumentError("unsupported grant_types")

        def text(name, size=500):
            value = document.get(name)
            return value[:size] if isinstance(value, str) and value else False

        return {
            "name": text("client_name", 200) or urlsplit(url).hostname,
            "redirect_uris": "\n".join(uris),
            "grant_types": " ".join(grant_types),
            "token_endpoint_auth_method": "none",
            "scope": text("scope"),
            "logo_uri": text("logo_uri", 2000),
            "client_uri": text("client_uri", 2000),
            "tos_uri": text("tos_uri", 2000),
            "policy_uri": text("policy_uri", 2000),
            "software_id": text("software_id", 200),
            "software_version": text("software_version", 200),
            "metadata_json": json.dumps({k: v for k, v in document.items() if k != "jwks"})[:CIMD_MAX_BYTES],
            "metadata_fetched_at": fields.Datetime.now(),
            "active": True,
        }

    def _ocore_metadata(self):
        """The registered metadata (RFC 7591 §3.2.1) without secrets."""
        self.ensure_one()
        try:
            data = json.loads(self.metadata_json or "{}")
        except ValueError:
            data = {}
        data.update({
            "client_id": self.client_id,
            "client_name": self.name,
            "redirect_uris": self._ocore_redirect_uris(),
            "grant_types": self._ocore_grant_types(),
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
        })
        return {k: v for k, v in data.items() if v not in (None, "", [])}

    def action_generate_secret(self):
        """Button: (re)generate the client secret of a confidential client and show it once."""
        self.ensure_one()
        compat.check_access(self, "write")
        if self.token_endpoint_auth_method == "none":  # noqa: S105 - a name, not a secret
            raise UserError(_("A public client (authentication 'none') has no secret."))
        secret = self._ocore_set_secret()
        # the secret travels in the action's context only: the display model has no table
        return {
            "type": "ir.actions.act_window",
            "name": _("Client secret"),
            "res_model": "ocore.mcp.oauth.secret.show",
            "views": [[False, "form"]],
            "view_mode": "form",
            "target": "new",
            "context": {"default_secret": secret, "default_client_identifier": self.client_id},
        }

    def action_revoke_all(self):
        """Revoke every authorization of these clients (that the current user may see)."""
        authorizations = self.env["ocore.mcp.oauth.authorization"].search(
            [("client_id", "in", self.ids), ("active", "=", True)]
        )
        authorizations.action_revoke()
        return True

    def action_view_authorizations(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Authorizations"),
            "res_model": "ocore.mcp.oauth.authorization",
            "view_mode": "list,form",
            "domain": [("client_id", "=", self.id)],
            "context": {"active_test": False},
        }

    @api.autovacuum
    def _gc_unused_dynamic_clients(self):
        """Dynamically registered clients that never got an authorization within 30 days are removed."""
        limit = fields.Datetime.subtract(fields.Datetime.now(), days=30)
        unused = self.sudo().with_context(active_test=False).search(
            [("registration", "in", ("dcr", "cimd")), ("create_date", "<", limit), ("last_used", "=", False)]
        )
        unused.filtered(lambda c: not c.with_context(active_test=False).authorization_ids).unlink()
