"""Per-connection and per-call state handed through the pipeline."""

import contextvars
import functools
from dataclasses import dataclass, field

from ..lib.errors import Refusal
from ..lib.protocol import LOG_LEVELS

_current_call = contextvars.ContextVar("ocore_mcp_call", default=None)


@dataclass
class KeyAuth:
    """What the pipeline needs to know of an API key and its owner, read in one query."""

    id: int
    active: bool
    has_secret: bool
    expiration_date: object
    user_id: int
    user_active: bool
    login: str
    lang: str | None
    tz: str | None
    company_id: int
    scope: dict


@dataclass
class Connection:
    """Who is calling, over what, with which filters (one HTTP request)."""

    key: object  # ocore.mcp.key record (sudo)
    scope: dict | None
    settings: dict
    transport: str  # "stream", "sse" or "modern"
    protocol_version: str | None = None
    session: object = None  # ocore.mcp.session record or None (modern)
    client_name: str | None = None
    client_version: str | None = None
    client_capabilities: dict = field(default_factory=dict)
    ip: str | None = None
    instances: list | None = None  # ?instances=
    categories: list | None = None  # ?categories=
    log_level: str | None = None
    emit: object = None  # callable(message dict): notifications during a call
    base_url: str = ""
    auth: KeyAuth | None = None
    # 2026-07-28 retry of a request that got an InputRequiredResult: the client's answers and our sealed state
    input_responses: dict | None = None
    request_state: str | None = None

    def __post_init__(self):
        if self.auth is None and self.key:
            self.auth = self.key._ocore_auth_info()
        if self.scope is None and self.auth is not None:
            self.scope = self.auth.scope

    @functools.cached_property
    def session_id(self):
        # cached: the call's bookkeeping commit empties the ORM cache, the id never changes
        return self.session.session_id if self.session else None


@dataclass
class CallContext:
    """One tools/call, as seen by the tool (``self._call()``)."""

    connection: Connection
    spec: object
    full_name: str
    arguments: dict
    timeout: int
    max_response_kb: int
    confirm: bool = False
    dry_run: bool = False
    request_id: object = None
    progress_token: object = None
    audit_id: int | None = None
    deadline: object = None
    notes: list = field(default_factory=list)
    secrets: list = field(default_factory=list)  # values the audit log must not keep (see keep_secret)

    def progress(self, progress, total=None, message=None):
        """Send a progress notification when the client asked for them."""
        emit = self.connection.emit
        if self.progress_token is None or emit is None:
            return
        params = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message:
            params["message"] = message
        emit({"jsonrpc": "2.0", "method": "notifications/progress", "params": params})

    def log(self, level, message, logger="ocore_mcp"):
        """Send a log message notification if the client's level lets it through."""
        wanted = self.connection.log_level
        emit = self.connection.emit
        if not wanted or emit is None or LOG_LEVELS.index(level) < LOG_LEVELS.index(wanted):
            return
        emit(
            {
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": {"level": level, "logger": logger, "data": message},
            }
        )

    def keep_secret(self, value):
        """Mask ``value`` (e.g. a one-time token in the result) in the audit log's result summary."""
        if value:
            self.secrets.append(str(value))

    def require_confirm(self, what):
        """Refuse (with a warning of what would happen) unless the call is confirmed: confirm=true was given,
        or the human accepted it (elicitation, an approval: the pipeline's confirm step then sets ``confirm``,
        see models/mcp_approval.py)."""
        if not self.confirm:
            raise Refusal(
                "confirm_required",
                f"Confirmation required: this would {what}. Call again with confirm: true to proceed.",
            )


def current_call():
    return _current_call.get()


def set_current_call(call):
    return _current_call.set(call)


def reset_current_call(token):
    _current_call.reset(token)
