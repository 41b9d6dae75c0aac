"""What ``protocol.py`` imports of the server's ``ocore_mcp/lib/errors.py``, without Odoo: the JSON-RPC error
exception and the HTTP status of each protocol error code."""

import mcp_types

ERROR_HTTP_STATUS = {
    mcp_types.PARSE_ERROR: 400,
    mcp_types.INVALID_REQUEST: 400,
    mcp_types.INVALID_PARAMS: 400,
    mcp_types.HEADER_MISMATCH: 400,
    mcp_types.MISSING_REQUIRED_CLIENT_CAPABILITY: 400,
    mcp_types.UNSUPPORTED_PROTOCOL_VERSION: 400,
    mcp_types.METHOD_NOT_FOUND: 404,
}


class ProtocolError(Exception):
    """A JSON-RPC error to send back."""

    def __init__(self, code, message, data=None, http_status=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.http_status = http_status or ERROR_HTTP_STATUS.get(code, 200)
