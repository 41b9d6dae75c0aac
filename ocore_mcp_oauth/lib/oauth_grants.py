"""The grants (authorization code with S256 PKCE, rotating refresh tokens, device code) and endpoints
(device authorization, revocation, dynamic client registration, RFC 9207 issuer) of the authorization
server: Authlib's, with their storage callbacks on the ``ocore.mcp.oauth.*`` models and this server's
rules (RFC 8707 resources, a refused code exchange burns the code, one-time device codes)."""

import json
from types import MappingProxyType

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import OAuth2Error, grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, UnauthorizedClientError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7591.errors import InvalidClientMetadataError, InvalidRedirectURIError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE, DeviceAuthorizationEndpoint, DeviceCodeGrant
from authlib.oauth2.rfc9207 import IssuerParameter

from .oauth_adapters import AuthorizationCodeAdapter, DeviceCredentialAdapter, GrantUser, TokenAdapter
from .qr import terminal_qr
from .resource import normalize_resource, redirect_uri_problem

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the requested resource is invalid, unknown or not served by this server."""

    error = "invalid_target"


def check_token_request_resource(grant, granted_resource):
    """RFC 8707 at the token endpoint: a ``resource`` sent again must name the granted resource."""
    values = grant.request.payload.datalist.get("resource", [])
    if len(values) > 1:
        raise InvalidTargetError("Only one 'resource' is supported.")
    if values and normalize_resource(values[0]) != normalize_resource(granted_resource):
        raise InvalidTargetError("The 'resource' does not match the one the grant was issued for.")


class S256CodeChallenge(CodeChallenge):
    """PKCE, mandatory for every client, S256 only: a missing challenge or the 'plain' method is refused."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ("S256",)
    CODE_CHALLENGE_METHODS = MappingProxyType({"S256": compare_s256_code_challenge})

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: missing 'code_challenge' (S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE 'code_challenge_method' must be S256 ('plain' is not accepted).")
        return super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier' (PKCE is required).")
        return super().validate_code_verifier(grant, result)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_authorization_request(self):
        redirect_uri = super().validate_authorization_request()
        try:
            self.request.ocore_resource = self.server.validate_resource(self.request.payload.datalist)
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
        return redirect_uri

    def save_authorization_code(self, code, request):
        data = request.payload.data
        self.server.env["ocore.mcp.oauth.code"]._ocore_create(
            code,
            request.user.authorization,
            request.payload.redirect_uri,
            request.payload.scope,
            request.ocore_resource,
            data.get("code_challenge"),
            data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code, client):
        record = self.server.env["ocore.mcp.oauth.code"]._ocore_find(code)
        if not record or record.client_id != client.record:
            return None
        if record.used_at:
            record._ocore_replayed()
            return None
        from odoo import fields

        if record.expires_at <= fields.Datetime.now():
            return None
        self.request.ocore_presented_code = record
        return AuthorizationCodeAdapter(record)

    def validate_token_request(self):
        """A valid code presented in a request that fails (wrong or missing PKCE verifier, another
        redirect_uri or resource) is burnt: the code is single use, a guess of the verifier gets one try
        (OAuth 2.1 §4.1.3, RFC 9700 §2.1.1)."""
        try:
            validated = super().validate_token_request()
            check_token_request_resource(self, self.request.authorization_code.record.resource)
        except OAuth2Error:
            presented = getattr(self.request, "ocore_presented_code", None)
            if presented is not None and not presented.used_at:
                from odoo import fields

                presented.write({"used_at": fields.Datetime.now()})
            raise
        return validated

    def delete_authorization_code(self, authorization_code):
        from odoo import fields

        authorization_code.record.write({"used_at": fields.Datetime.now()})

    def authenticate_user(self, authorization_code):
        authorization = authorization_code.record.authorization_id
        return GrantUser(authorization) if authorization._ocore_usable() else None

    def create_token_response(self):
        code = self.request.authorization_code.record
        self.request.ocore_family = code.family
        self.request.ocore_resource = code.resource
        return super().create_token_response()


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: every refresh returns a new refresh token

    def authenticate_refresh_token(self, refresh_token):
        from odoo import fields

        Token = self.server.env["ocore.mcp.oauth.token"]
        record = Token._ocore_find(refresh_token, "refresh", active_only=False)
        if not record:
            return None
        if not record.active:
            if record.revoke_reason == "rotated":
                # a rotated refresh token came back: stolen or replayed, end the whole grant (RFC 9700 §4.14)
                record._ocore_revoke_family("refresh_reused")
            return None
        if not record.refresh_expires_at or record.refresh_expires_at <= fields.Datetime.now():
            return None
        if not record.authorization_id._ocore_usable():
            return None
        return TokenAdapter(record)

    def validate_token_request(self):
        validated = super().validate_token_request()
        check_token_request_resource(self, self.request.refresh_token.record.resource)
        return validated

    def authenticate_user(self, refresh_token):
        return GrantUser(refresh_token.record.authorization_id)

    def revoke_old_credential(self, refresh_token):
        refresh_token.record._ocore_revoke("rotated")

    def create_token_response(self):
        record = self.request.refresh_token.record
        self.request.ocore_family = record.family
        self.request.ocore_resource = record.resource
        return super().create_token_response()


class OdooDeviceCodeGrant(DeviceCodeGrant):
    def validate_token_request(self):
        validated = super().validate_token_request()
        check_token_request_resource(self, self.request.credential.record.resource)
        return validated

    def query_device_credential(self, device_code):
        record = self.server.env["ocore.mcp.oauth.device"]._ocore_find(device_code)
        if not record:
            return None
        if record.status == "consumed":
            raise InvalidGrantError("This device code has already been used.")
        return DeviceCredentialAdapter(record)

    def query_user_grant(self, user_code):
        record = self.request.ocore_device
        if record.status == "approved":
            authorization = record.authorization_id
            if not authorization._ocore_usable():
                return None, False
            return GrantUser(authorization), True
        if record.status == "denied":
            return None, False
        return None

    def validate_device_credential(self, credential):
        self.request.ocore_device = credential.record
        return super().validate_device_credential(credential)

    def should_slow_down(self, credential):
        return credential.record._ocore_poll()

    def create_token_response(self):
        record = self.request.credential.record
        self.request.ocore_family = record.family
        self.request.ocore_resource = record.resource
        result = super().create_token_response()
        record.write({"status": "consumed"})
        return result


class OdooDeviceAuthorizationEndpoint(DeviceAuthorizationEndpoint):
    EXPIRES_IN = 900
    INTERVAL = 5

    def create_endpoint_response(self, request):
        self._request = request
        client = self.authenticate_client(request)
        if not client.check_grant_type(DEVICE_CODE_GRANT_TYPE):
            raise UnauthorizedClientError("The client is not registered for the device authorization grant.")
        request.ocore_resource = self.server.validate_resource(request.payload.datalist)
        status, data, headers = super().create_endpoint_response(request)
        data["expires_in"] = self._ttl
        data["qr_code"] = terminal_qr(data["verification_uri_complete"])
        return status, data, headers

    def get_verification_uri(self):
        return f"{self.server.issuer}/oauth/device"

    def generate_user_code(self):
        return "-"  # replaced by the model, which guarantees uniqueness among pending codes

    def save_device_credential(self, client_id, scope, data):
        device, ttl = self.server.env["ocore.mcp.oauth.device"]._ocore_create(
            self._request.client.record, data["device_code"], scope, self._request.ocore_resource, self.INTERVAL
        )
        self._ttl = ttl
        data["user_code"] = device.user_code
        data["verification_uri_complete"] = f"{data['verification_uri']}?user_code={device.user_code}"


class OdooRevocationEndpoint(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        Token = self.server.env["ocore.mcp.oauth.token"]
        kinds = ["refresh", "access"] if token_type_hint == "refresh_token" else ["access", "refresh"]  # noqa: S105 - a name, not a secret
        for kind in kinds:
            record = Token._ocore_find(token_string, kind)
            if record:
                return TokenAdapter(record)
        return None

    def revoke_token(self, token, request):
        # RFC 7009 §2.1: revoking a refresh token also ends the access tokens of the same grant;
        # this server ends the whole grant either way.
        record = token.record
        record._ocore_revoke_family("client")
        auth = record.authorization_id
        if not auth.token_ids.filtered("active"):
            auth._ocore_end_sessions("the OAuth token has been revoked")


class OdooClientRegistrationEndpoint(ClientRegistrationEndpoint):
    """RFC 7591 dynamic client registration (open, as the MCP authorization spec expects)."""

    def authenticate_token(self, request):
        if not self.server.registration_enabled:
            return None  # -> access_denied
        return True

    def get_server_metadata(self):
        metadata = dict(self.server.metadata())
        metadata.pop("scopes_supported")  # unknown scopes are dropped below, not refused
        return metadata

    def extract_client_metadata(self, request):
        metadata = super().extract_client_metadata(request)
        uris = metadata.get("redirect_uris") or []
        grant_types = metadata.get("grant_types") or ["authorization_code"]
        if "authorization_code" in grant_types and not uris:
            raise InvalidRedirectURIError("'redirect_uris' is required for the authorization_code grant.")
        for uri in uris:
            problem = redirect_uri_problem(uri)
            if problem:
                raise InvalidRedirectURIError(f"{uri}: {problem}")
        if metadata.get("token_endpoint_auth_method") not in AUTH_METHODS:
            raise InvalidClientMetadataError("Unsupported 'token_endpoint_auth_method'.")
        metadata["grant_types"] = grant_types
        if metadata.get("scope"):
            metadata["scope"] = self.server.known_scopes(metadata["scope"]) or "mcp"
        return metadata

    def generate_client_secret(self, request):
        method = request.payload.data.get("token_endpoint_auth_method") or "client_secret_basic"
        return None if method == "none" else generate_token(48)

    def save_client(self, client_info, client_metadata, request):
        secret = client_info.get("client_secret")
        from odoo.addons.ocore_mcp.models.mcp_key import hash_token

        stored = {k: v for k, v in client_metadata.items() if k != "jwks"}
        return self.server.env["ocore.mcp.oauth.client"].sudo().create({
            "name": (client_metadata.get("client_name") or "MCP client")[:200],
            "client_id": client_info["client_id"],
            "client_secret_hash": hash_token(secret) if secret else False,
            "token_endpoint_auth_method": client_metadata["token_endpoint_auth_method"],
            "redirect_uris": "\n".join(client_metadata.get("redirect_uris") or []),
            "grant_types": " ".join(client_metadata["grant_types"]),
            "scope": client_metadata.get("scope") or False,
            "logo_uri": client_metadata.get("logo_uri") or False,
            "client_uri": client_metadata.get("client_uri") or False,
            "tos_uri": client_metadata.get("tos_uri") or False,
            "policy_uri": client_metadata.get("policy_uri") or False,
            "software_id": client_metadata.get("software_id") or False,
            "software_version": client_metadata.get("software_version") or False,
            "registration": "dcr",
            "metadata_json": json.dumps(stored),
        })

    def create_registration_response(self, request):
        status, body, headers = super().create_registration_response(request)
        if body.get("client_secret") is None:
            body.pop("client_secret", None)
            body.pop("client_secret_expires_at", None)
        return status, body, headers


class OdooIssuerParameter(IssuerParameter):
    """RFC 9207: every authorization response (errors included) names the issuer."""

    def __init__(self, issuer):
        self.issuer = issuer

    def get_issuer(self):
        return self.issuer
