"""Authlib's client, code, token and device credential mixins over the ``ocore.mcp.oauth.*`` records, and
the "user" of a grant (here: the authorization, user + client + key, it is for)."""

from authlib.oauth2.rfc6749 import ClientMixin

from .resource import redirect_uri_matches


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
