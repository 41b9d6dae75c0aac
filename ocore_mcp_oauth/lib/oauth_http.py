"""Authlib's requests and responses over Odoo's werkzeug request: the ``OAuth2Request`` and JSON request
Authlib's grants and endpoints read, and the JSON responses of the controller (like the glue of Authlib's
Flask and Django integrations)."""

import json
from collections import defaultdict

from authlib.oauth2.rfc6749 import JsonPayload, JsonRequest, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc7591.errors import InvalidClientMetadataError
from werkzeug.wrappers import Response

# with Access-Control-Allow-Origin naming an origin an administrator allowed (the controller adds them)
CORS_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version",
}


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
