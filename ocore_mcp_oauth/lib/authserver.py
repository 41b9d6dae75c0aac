"""The OAuth 2.1 authorization server: Authlib's framework-agnostic server adapted to Odoo.

Like Authlib's Flask and Django integrations, this addon only provides the glue, one concern per module:

- ``oauth_http``: an ``OAuth2Request`` built from Odoo's werkzeug request, JSON responses;
- ``oauth_adapters``: Authlib's client / code / token / device mixins over the ``ocore.mcp.oauth.*`` records;
- ``oauth_grants``: the grants and endpoints with their storage callbacks on those models;
- ``qr``: the QR codes of the device flow;
- this module: the server itself (scopes, RFC 8707 resources, RFC 8414 metadata, Authlib <-> Odoo).

The protocol logic (parameter validation, PKCE, client authentication, error responses) is Authlib's.

One server object is built per HTTP request, around that request's environment (superuser: every
decision about the end user is made explicitly in the controller and the models).
"""

import json

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE
from werkzeug.wrappers import Response

from .oauth_adapters import ClientAdapter
from .oauth_grants import (
    AUTH_METHODS,
    AuthorizationCodeGrant,
    InvalidTargetError,
    OdooClientRegistrationEndpoint,
    OdooDeviceAuthorizationEndpoint,
    OdooDeviceCodeGrant,
    OdooIssuerParameter,
    OdooRevocationEndpoint,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from .oauth_http import OdooJsonRequest, OdooOAuth2Request
from .resource import accepted_resources, canonical_resource, normalize_resource

BASE_SCOPES = ("mcp", "mcp:read", "offline_access")


def param_enabled(env, name):
    """A boolean system parameter (a Settings checkbox: unchecking it removes the parameter)."""
    value = env["ir.config_parameter"].sudo().get_param(name) or ""
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class OdooAuthorizationServer(AuthorizationServer):
    def __init__(self, env, issuer):
        super().__init__()
        self.env = env
        self.issuer = issuer.rstrip("/")
        self.registration_enabled = param_enabled(env, "ocore_mcp_oauth.registration_enabled")
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(OdooDeviceCodeGrant)
        self.register_endpoint(OdooRevocationEndpoint)
        self.register_endpoint(OdooClientRegistrationEndpoint)
        self.register_endpoint(OdooDeviceAuthorizationEndpoint)
        self.register_extension(OdooIssuerParameter(self.issuer))

    # storage
    def query_client(self, client_id):
        record = self.env["ocore.mcp.oauth.client"]._ocore_find_or_fetch(client_id)
        return ClientAdapter(record) if record and record.active else None

    def save_token(self, token, request):
        """Authlib generated the token dict; the token model stores its hashes."""
        # tokens are generated and stored in one step by generate_token (see below)

    def generate_token(self, grant_type, client, user=None, scope=None, expires_in=None,
                       include_refresh_token=True):
        authorization = user.authorization
        request = self._current_request
        offline = bool(include_refresh_token)
        return self.env["ocore.mcp.oauth.token"]._ocore_issue(
            authorization,
            grant_type,
            request.ocore_resource,
            authorization._ocore_token_scope(scope, offline=offline),
            request.ocore_family,
            offline,
        )

    # scopes and resources
    def supported_scopes(self):
        codes = self.env["ocore.mcp.category"].sudo()._ocore_offered().mapped("code")
        return list(BASE_SCOPES) + [f"mcp:{code}" for code in codes]

    def validate_requested_scope(self, scope):
        """Unknown scope values are ignored, not refused (RFC 6749 §3.3: the server may ignore part of the
        request): what a token allows is the key chosen on the consent page, and the token response names
        the granted scope. Some clients ask for scopes of their own."""

    def known_scopes(self, scope):
        supported = set(self.supported_scopes())
        return " ".join(item for item in scope_to_list(scope or "") or [] if item in supported)

    def accepted_resources(self):
        return accepted_resources(self.env["ocore.mcp.key"]._ocore_server_origins() | {self.issuer})

    def extra_audiences(self):
        """Other resource servers this authorization server issues tokens for (setting
        ``ocore_mcp_oauth.extra_audiences``, e.g. a federating control plane). Their tokens are refused here."""
        value = self.env["ir.config_parameter"].sudo().get_param("ocore_mcp_oauth.extra_audiences") or ""
        return {normalize_resource(v) for v in value.replace("\n", ",").split(",") if normalize_resource(v)}

    def validate_resource(self, datalist):
        """RFC 8707: the one resource a grant is for (default: this server's MCP resource)."""
        values = datalist.get("resource", [])
        if len(values) > 1:
            raise InvalidTargetError("Only one 'resource' is supported.")
        if not values:
            return canonical_resource(self.issuer)
        resource = normalize_resource(values[0])
        if not resource or resource not in self.accepted_resources() | self.extra_audiences():
            raise InvalidTargetError(f"Unknown resource {values[0]!r}: this server issues tokens for its MCP "
                                     f"endpoint {canonical_resource(self.issuer)}.")
        return resource

    # metadata (RFC 8414)
    def metadata(self):
        issuer = self.issuer
        data = AuthorizationServerMetadata({
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "device_authorization_endpoint": f"{issuer}/oauth/device/code",
            "scopes_supported": self.supported_scopes(),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_CODE_GRANT_TYPE],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        })
        if self.registration_enabled:
            data["registration_endpoint"] = f"{issuer}/oauth/register"
        if self.env["ocore.mcp.oauth.client"]._ocore_cimd_enabled():
            data["client_id_metadata_document_supported"] = True
        return data

    # Authlib <-> Odoo
    @property
    def _current_request(self):
        return self._oauth2_request

    def create_oauth2_request(self, request):
        if isinstance(request, OAuth2Request):
            self._oauth2_request = request
            return request
        from odoo.http import request as odoo_request

        self._oauth2_request = OdooOAuth2Request(odoo_request.httprequest)
        return self._oauth2_request

    def create_json_request(self, request):
        from odoo.http import request as odoo_request

        return OdooJsonRequest(odoo_request.httprequest)

    def handle_response(self, status_code, payload, headers):
        body = json.dumps(payload) if isinstance(payload, dict) else (payload or "")
        resp = Response(body, status=status_code)
        for name, value in headers:
            resp.headers[name] = value
        if isinstance(payload, dict):
            resp.headers["Content-Type"] = "application/json"
        return resp

    def send_signal(self, name, *args, **kwargs):
        pass
