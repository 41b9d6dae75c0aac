"""Asking the human before a destructive call: MCP elicitation.

Two shapes, one question (a form with a boolean ``confirm`` field and the description of what will happen):

- 2025 sessions (2025-06-18 and later) whose client declared the ``elicitation`` capability (form mode): an
  ``elicitation/create`` request is sent on the call's stream (Streamable HTTP: the POST's SSE response; legacy
  SSE: the session's stream) and the call waits for the client's JSON-RPC response. The client POSTs it to the
  endpoint, possibly to another worker: ``ocore.mcp.server._ocore_handle`` publishes it (``t`` "answer") through
  the NOTIFY path of ``service/notify.py`` to the process that waits (``hub.expect_answer``).
- 2026-07-28 (stateless): the multi-round-trip ``InputRequiredResult`` — the result carries the elicitation in
  ``inputRequests`` and a ``requestState`` sealed here (HMAC with the database secret, bound to the key, the
  tool and its arguments, valid ``STATE_SECONDS``); the client retries the same request with ``inputResponses``
  and the ``requestState`` echoed.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time

import mcp_types

from ..lib.errors import ProtocolError, Refusal
from ..lib.redact import redact_params

ANSWER_TIMEOUT_SECONDS = 300  # how long a 2025 session's call waits for the human's answer
STATE_SECONDS = 600  # how long a 2026-07-28 requestState stays valid
INPUT_KEY = "confirm"  # the key of the elicitation in inputRequests / inputResponses, and the form's field
FIRST_ELICITING_VERSION = "2025-06-18"
# arguments that do not change what a call does (left out of the digest a confirmation is bound to)
UNBOUND_ARGUMENTS = frozenset({"confirm", "timeout_seconds", "max_response_size"})
ARGUMENTS_SHOWN = 1500  # characters of the (redacted) arguments shown to the human


class HumanStep(Refusal):  # noqa: N818 - control flow of the pipeline
    """The call does not run now: refused and audited like any refusal, but the client gets ``result``
    (an ``InputRequiredResult``, or the text of a pending approval) or ``protocol_error`` (a JSON-RPC error,
    e.g. MissingRequiredClientCapability) instead of the plain refusal text."""

    def __init__(self, code, message, result=None, protocol_error=None):
        super().__init__(code, message)
        self.result = result
        self.protocol_error = protocol_error


def answer_timeout(configured=None):
    """How long a call waits for the human: ``configured`` (system parameter ocore_mcp.confirmation_timeout) or
    ``ANSWER_TIMEOUT_SECONDS``, less in a prefork HTTP worker, whose watchdog kills a request running past
    ``limit_time_real`` (the gevent worker and threaded servers have none)."""
    import odoo
    from odoo.tools import config

    wanted = configured if isinstance(configured, int) and configured > 0 else ANSWER_TIMEOUT_SECONDS
    limit = config.get("limit_time_real") or 0
    if config.get("workers") and not getattr(odoo, "evented", False) and limit > 0:
        return max(1, min(wanted, limit - 15))
    return wanted


def can_form_elicit(capabilities, version):
    """Whether the client declared form elicitation (an empty ``elicitation`` object means form mode)."""
    if not isinstance(capabilities, dict):
        return False
    elicitation = capabilities.get("elicitation")
    if not isinstance(elicitation, dict):
        return False
    if version and version < FIRST_ELICITING_VERSION:
        return False
    return not elicitation or "form" in elicitation


def schema(what):
    return {
        "type": "object",
        "properties": {
            INPUT_KEY: {
                "type": "boolean",
                "title": "Run this call",
                "description": f"Tick to run it: {what[:200]}",
                "default": False,
            },
        },
        "required": [INPUT_KEY],
    }


def describe(spec, full_name, arguments, instance):
    """What will happen, in the words shown to the human."""
    shown = {k: v for k, v in arguments.items() if k not in UNBOUND_ARGUMENTS}
    text = redact_params(shown, ARGUMENTS_SHOWN)
    size = len(json.dumps(shown, ensure_ascii=False, default=str))
    if size > ARGUMENTS_SHOWN:  # what follows the cut (a script's last statement, more ids) runs too: say so
        text += (f" [only the first {ARGUMENTS_SHOWN} of the arguments' {size} characters are shown; the call "
                 "runs with all of them: decline unless you checked the rest]")
    summary = (spec.description or "").strip().split("\n", 1)[0]
    return (f"The AI client asks to run the destructive tool {full_name} on the Odoo instance '{instance}' "
            f"({summary}) with these arguments: {text}. It may change or delete data irreversibly. Confirm to "
            "run it; decline to leave everything unchanged.")


def request_params(message, what, version):
    """The params of an ``elicitation/create`` request (form mode) for ``version``."""
    return for_version({"message": message, "requestedSchema": schema(what)}, version)


def for_version(params, version):
    """The params of a form-mode ``elicitation/create`` (``message``, ``requestedSchema``) shaped for
    ``version``: ``mode`` is sent from the revision that introduced modes on (2025-11-25), not before. The
    control plane relays an instance's 2026-07-28 request to its 2025 client with it."""
    params = {"message": params["message"], "requestedSchema": params["requestedSchema"]}
    if version is None or version >= "2025-11-25":  # the revision that introduced modes
        params = {"mode": "form", **params}
    return params


def missing_capability():
    """The refusal of a request that answers an elicitation without declaring the capability (a JSON-RPC
    MissingRequiredClientCapability error for the client)."""
    message = ("this request answers an elicitation but does not declare the elicitation capability (form) in "
               "its clientCapabilities")
    return HumanStep("missing_capability", message, protocol_error=ProtocolError(
        mcp_types.MISSING_REQUIRED_CLIENT_CAPABILITY, f"Missing required client capability: {message}",
        {"requiredCapabilities": {"elicitation": {"form": {}}}}))


def new_request_id():
    return f"ocore-confirm-{secrets.token_hex(8)}"


def outcome(response):
    """('accept', True) / ('decline' | 'cancel', False) from an ElicitResult-shaped dict (or model)."""
    if response is None:
        return "cancel", False
    if hasattr(response, "model_dump"):
        response = response.model_dump(by_alias=True, mode="json", exclude_none=True)
    if not isinstance(response, dict):
        return "cancel", False
    action = response.get("action")
    content = response.get("content") if isinstance(response.get("content"), dict) else {}
    if action == "accept":
        return ("accept", True) if content.get(INPUT_KEY) is True else ("decline", False)
    return ("decline" if action == "decline" else "cancel"), False


def digest(secret, key_id, full_name, arguments):
    """HMAC of what a confirmation is bound to: the key, the tool and its arguments (canonical JSON)."""
    bound = {k: v for k, v in (arguments or {}).items() if k not in UNBOUND_ARGUMENTS}
    text = json.dumps([key_id, full_name, bound], sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def _b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def seal(secret, bound_digest, now=None):
    """An opaque requestState: the digest it is bound to and its expiry, signed."""
    payload = _b64(json.dumps({"d": bound_digest, "x": int((now or time.time()) + STATE_SECONDS)},
                              separators=(",", ":")).encode())
    sig = _b64(hmac.new(secret.encode(), b"ocore-mcp-state:" + payload.encode(), hashlib.sha256).digest())
    return f"v1.{payload}.{sig}"


def unseal(secret, token, bound_digest, now=None):
    """None when ``token`` is a valid requestState for this call, else the reason (for the refusal)."""
    if not isinstance(token, str) or token.count(".") != 2 or not token.startswith("v1."):
        return "malformed requestState"
    _version, payload, sig = token.split(".")
    expected = _b64(hmac.new(secret.encode(), b"ocore-mcp-state:" + payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, expected):
        return "requestState was not issued by this server"
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return "malformed requestState"
    if not isinstance(data, dict) or not hmac.compare_digest(str(data.get("d")), bound_digest):
        return "requestState belongs to another call (tool or arguments differ)"
    if not isinstance(data.get("x"), int) or data["x"] < (now or time.time()):
        return "requestState expired: call again without it"
    return None
