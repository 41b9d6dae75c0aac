"""The OAuth 2.1 authorization server: Authlib's framework-agnostic server adapted to Odoo.

Like Authlib's Flask and Django integrations, this module only provides the glue: an ``OAuth2Request``
built from Odoo's werkzeug request (``create_oauth2_request``), a werkzeug response built from Authlib's
``(status, body, headers)`` (``handle_response``), and the storage callbacks of each grant and endpoint on
the ``ocore.mcp.oauth.*`` models. The protocol logic (parameter validation, PKCE, client authentication,
error responses) is Authlib's.

One server object is built per HTTP request, around that request's environment (superuser: every
decision about the end user is made explicitly in the controller and the models).
"""

import io
import json
from collections import defaultdict
from types import MappingProxyType

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    JsonPayload,
    JsonRequest,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7591.errors import InvalidClientMetadataError, InvalidRedirectURIError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE, DeviceAuthorizationEndpoint, DeviceCodeGrant
from authlib.oauth2.rfc9207 import IssuerParameter
from werkzeug.wrappers import Response

from .resource import accepted_resources, canonical_resource, normalize_resource, redirect_uri_problem

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
BASE_SCOPES = ("mcp", "mcp:read", "offline_access")
# with Access-Control-Allow-Origin naming an origin an administrator allowed (the controller adds them)
CORS_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version",
}


def param_enabled(env, name):
    """A boolean system parameter (a Settings checkbox: unchecking it removes the parameter)."""
    value = env["ir.config_parameter"].sudo().get_param(name) or ""
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the requested resource is invalid, unknown or not served by this server."""

    error = "invalid_target"


# -- request / response glue ---------------------------------------------------------------------


class OdooOAuth2Payload(OAuth2Payload):
    def __init__(self, httprequest):
        self._httprequest = httprequest
        self._data = None
        self._datalist = None

    @property
    def data(self):
        if self._data is None:
            data = {}
            data.update(self._httprequest.args.to_dict())
            data.update(self._httprequest.form.to_dict())
            self._data = data
        return self._data

    @property
    def datalist(self):
        if self._datalist is None:
            values = defaultdict(list)
            for source in (self._httprequest.args, self._httprequest.form):
                for key in source:
                    values[key].extend(source.getlist(key))
            self._datalist = values
        return self._datalist


class OdooOAuth2Request(OAuth2Request):
    def __init__(self, httprequest):
        super().__init__(method=httprequest.method, uri=httprequest.url, headers=httprequest.headers)
        self._httprequest = httprequest
        self.payload = OdooOAuth2Payload(httprequest)

    @property
    def args(self):
        return self._httprequest.args

    @property
    def form(self):
        return self._httprequest.form


class OdooJsonPayload(JsonPayload):
    def __init__(self, httprequest):
        self._httprequest = httprequest

    @property
    def data(self):
        try:
            data = json.loads(self._httprequest.get_data() or b"null")
        except ValueError:
            raise InvalidClientMetadataError("The registration request is not valid JSON.") from None
        if not isinstance(data, dict):
            raise InvalidClientMetadataError("The registration request must be a JSON object.")
        return data


class OdooJsonRequest(JsonRequest):
    def __init__(self, httprequest):
        super().__init__(httprequest.method, httprequest.url, httprequest.headers)
        self.payload = OdooJsonPayload(httprequest)


def json_response(body, status=200, headers=None):
    resp = Response(json.dumps(body), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


# -- model adapters (Authlib's mixins over Odoo records) -----------------------------------------


class ClientAdapter(ClientMixin):
    def __init__(self, record):
        self.record = record

    def get_client_id(self):
        return self.record.client_id

    def get_default_redirect_uri(self):
        uris = self.record._ocore_redirect_uris()
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope):
        return scope

    def check_redirect_uri(self, redirect_uri):
        from .resource import redirect_uri_matches

        return any(redirect_uri_matches(redirect_uri, uri) for uri in self.record._ocore_redirect_uris())

    def check_client_secret(self, client_secret):
        return self.record._ocore_check_secret(client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        if endpoint in ("token", "revocation", "device_authorization"):
            return self.record.token_endpoint_auth_method == method
        return True

    def check_response_type(self, response_type):
        return response_type == "code" and "authorization_code" in self.record._ocore_grant_types()

    def check_grant_type(self, grant_type):
        return grant_type in self.record._ocore_grant_types()


class AuthorizationCodeAdapter:
    def __init__(self, record):
        self.record = record
        self.code_challenge = record.code_challenge
        self.code_challenge_method = record.code_challenge_method

    def get_redirect_uri(self):
        return self.record.redirect_uri or None

    def get_scope(self):
        return self.record.scope or ""


class TokenAdapter:
    def __init__(self, record):
        self.record = record

    def check_client(self, client):
        return self.record.client_id == client.record

    def get_scope(self):
        return self.record.scope or ""

    def get_expires_in(self):
        return 0

    def is_revoked(self):
        return not self.record.active


class DeviceCredentialAdapter:
    def __init__(self, record):
        self.record = record

    def get_client_id(self):
        return self.record.client_id.client_id

    def get_scope(self):
        return self.record.scope or ""

    def get_user_code(self):
        return self.record.user_code

    def is_expired(self):
        return self.record.is_expired


class GrantUser:
    """What Authlib calls the user: here the authorization (user + client + key) the grant is for."""

    def __init__(self, authorization):
        self.authorization = authorization

    def get_user_id(self):
        return self.authorization.user_id.id


# -- grants and endpoints ------------------------------------------------------------------------


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
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier' (PKCE is required).")
        super().validate_code_verifier(grant, result)


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
            super().validate_token_request()
            check_token_request_resource(self, self.request.authorization_code.record.resource)
        except OAuth2Error:
            presented = getattr(self.request, "ocore_presented_code", None)
            if presented is not None and not presented.used_at:
                from odoo import fields

                presented.write({"used_at": fields.Datetime.now()})
            raise

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
        super().validate_token_request()
        check_token_request_resource(self, self.request.refresh_token.record.resource)

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
        super().validate_token_request()
        check_token_request_resource(self, self.request.credential.record.resource)

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


# -- the server ------------------------------------------------------------------------------------


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


def terminal_qr(text):
    """A QR code of ``text`` drawn with text characters, for a terminal (``qrcode`` library)."""
    import qrcode

    qr = qrcode.QRCode(border=1, error_correction=qrcode.constants.ERROR_CORRECT_L)
    qr.add_data(text)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()


def svg_qr(text):
    """A QR code of ``text`` as an inline SVG document (``qrcode`` library)."""
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    out = io.BytesIO()
    img.save(out)
    svg = out.getvalue().decode()
    return svg[svg.index("<svg"):]  # without the XML declaration, to inline it in HTML
