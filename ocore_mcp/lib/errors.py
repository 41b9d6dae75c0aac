"""The errors of the MCP server, and the one text a client reads for each exception.

A leaf module: it imports nothing of the project, so that every layer (lib, service, models,
tools, controllers) can raise and catch these without importing the layers above it.

- ``Refusal(code, message)``: the policy (or a tool's input check) refuses the call; nothing ran.
- ``ToolFailed(message, result)``: the tool's work failed but its output must still be shown.
- ``ProtocolError(code, message)``: a JSON-RPC error sent back instead of a result.
- ``error_text(exc)``: the message of a tool's exception as the client reads it (the pipeline's
  ``isError`` result and a batch item's ``error``).
"""

import mcp_types
import psycopg2

from odoo.exceptions import AccessDenied, AccessError, MissingError, UserError, ValidationError

# refusal codes -> prefix shown to the client
REASONS = {
    "unauthorized": "unauthorized",
    "mcp_disabled": "unauthorized",
    "ip_denied": "unauthorized",
    "category_denied": "permission denied",
    "tool_denied": "permission denied",
    "model_denied": "permission denied",
    "method_denied": "permission denied",
    "admin_only": "permission denied",
    "instance_denied": "permission denied",
    "read_only_key": "write operations blocked",
    "write_disabled": "write operations blocked",
    "confirm_required": "confirmation required",
    "confirmation_declined": "not confirmed",
    "approval_pending": "awaiting approval",
    "input_required": "input required",
    "missing_capability": "missing client capability",
    "rate_limited": "rate limit exceeded",
    "invalid_input": "invalid input",
    "unknown_tool": "unknown tool",
    "path_denied": "permission denied",
    "not_configured": "not configured",
    "not_found": "not found",
    "protected": "permission denied",
    "cooldown": "rate limit exceeded",
    "limit_exceeded": "limit exceeded",
    "too_many_streams": "limit exceeded",
    "unavailable": "unavailable",
    "sql_refused": "SQL refused",
}

# JSON-RPC error codes whose HTTP reply is not 200
ERROR_HTTP_STATUS = {
    mcp_types.PARSE_ERROR: 400,
    mcp_types.INVALID_REQUEST: 400,
    mcp_types.INVALID_PARAMS: 400,
    mcp_types.HEADER_MISMATCH: 400,
    mcp_types.MISSING_REQUIRED_CLIENT_CAPABILITY: 400,
    mcp_types.UNSUPPORTED_PROTOCOL_VERSION: 400,
    mcp_types.METHOD_NOT_FOUND: 404,
}


class Refusal(Exception):  # noqa: N818 - a refusal is not an error of the server
    """The call is refused (policy or input check): ``code`` is a key of ``REASONS``."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self):
        prefix = REASONS.get(self.code, self.code)
        if self.message.lower().startswith(prefix):
            return self.message
        return f"{prefix}: {self.message}"


class ToolFailed(Exception):  # noqa: N818 - the tool's own outcome, not a server error
    """Raised by a tool whose work failed but whose output the client must still see (e.g. a
    shell script's stdout/stderr). The pipeline rolls the call's savepoint back (nothing the
    tool wrote is kept) and returns ``result`` as an ``isError`` result: ``message``, then the
    shaped ``result`` (also as structuredContent)."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.message = message
        self.result = result


class ProtocolError(Exception):
    """A JSON-RPC error to send back (not a tool failure)."""

    def __init__(self, code, message, data=None, http_status=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.http_status = http_status or ERROR_HTTP_STATUS.get(code, 200)


# what a tool may raise for a failure the client can act on; anything else is an internal error
EXPECTED = (
    Refusal, ToolFailed, AccessError, AccessDenied, MissingError, UserError, ValidationError,
    ValueError, TypeError, KeyError, psycopg2.Error,
)


def error_text(exc, login=None, tool=None):
    """The client's text for an exception raised by a tool (the pipeline's ``isError`` result, a
    batch item's ``error``). ``login``: the key owner, named in a permission error; ``tool``: the
    tool's name, named in an internal error. The caller logs what is not ``EXPECTED``."""
    if isinstance(exc, Refusal):
        return str(exc)
    if isinstance(exc, ToolFailed):
        return exc.message
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(exc, AccessError | AccessDenied):
        if login:
            return f"permission denied (Odoo access rights of {login}): {text}"
        return f"permission denied: {text}"
    if isinstance(exc, MissingError):
        return f"not found: {text}"
    if isinstance(exc, UserError | ValidationError):
        return f"error: {text}"
    if isinstance(exc, ValueError | TypeError | KeyError):
        return f"invalid input: {exc}"
    if isinstance(exc, psycopg2.Error):
        return f"database error: {str(exc).strip()[:1000]}"
    where = f" in {tool}" if tool else ""
    return f"internal error{where}: {type(exc).__name__}: {exc}"
