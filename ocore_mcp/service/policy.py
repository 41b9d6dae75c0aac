"""The policy pipeline: every refusal of an MCP call is decided here.

Tools never re-implement these checks. Each refusal names its reason with
the words of the product's Troubleshooting guide ("unauthorized",
"permission denied", "write operations blocked", "rate limit exceeded" …).
"""

import ipaddress

from odoo import fields

from ..lib.errors import EXPECTED, REASONS, Refusal, ToolFailed, error_text
from ..lib.fields import IDENTIFIER

# ``Refusal``, ``ToolFailed``, ``REASONS`` and ``error_text`` live in lib/errors.py (a leaf every layer may
# import) and ``IDENTIFIER`` in lib/fields.py; they stay importable from here for existing addons.
__all__ = ["EXPECTED", "IDENTIFIER", "REASONS", "Refusal", "ToolFailed", "error_text"]


# -- connection level (every request) -----------------------------------------


def check_key(key, settings, ip):
    """Key valid, kill switch, IP allowlist (skipped when ``ip`` is None). Raise Refusal.

    ``key`` is an ``ocore.mcp.key`` record or its ``KeyAuth``.
    """
    auth = key._ocore_auth_info() if key and hasattr(key, "_ocore_auth_info") else key
    if not auth:
        raise Refusal("unauthorized", "unknown or malformed API key")
    if not auth.active:
        raise Refusal("unauthorized", "the API key has been revoked")
    if not auth.has_secret:
        raise Refusal("unauthorized", "the API key has no secret")
    if auth.expiration_date and auth.expiration_date <= fields.Datetime.now():
        raise Refusal("unauthorized", "the API key has expired")
    if not auth.user_active:
        raise Refusal("unauthorized", "the API key's owner has been deactivated")
    if not settings["enabled"]:
        raise Refusal("mcp_disabled", "MCP access is disabled on this instance (kill switch)")
    ips = auth.scope["ips"] if ip is not None else None
    if ips and not ip_allowed(ip, ips):
        raise Refusal("ip_denied", f"the client address {ip} is not in the key's IP allowlist")
    return auth


def ip_allowed(ip, networks):
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for net in networks:
        try:
            if address in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


# -- tool visibility (tools/list and tools/call) --------------------------------


def visibility_refusal(spec, conn, is_admin):
    """Why this key/session cannot see the tool, or None."""
    scope = conn.scope
    if not spec.meta.platform:
        slug = conn.settings["slug"]
        if conn.instances is not None and slug not in conn.instances:
            return Refusal("instance_denied", f"instance {slug} is not in this session's instance filter")
        if scope["instances"] and slug not in scope["instances"]:
            return Refusal("instance_denied", f"the API key is not scoped to instance {slug}")
    category = spec.category
    if scope["categories"] and category not in scope["categories"]:
        return Refusal(
            "category_denied",
            f"the API key's MCP permissions do not include the {category!r} category "
            f"(the key allows: {', '.join(scope['categories'])})",
        )
    if conn.categories is not None and category not in conn.categories:
        return Refusal("category_denied", f"category {category!r} is filtered out of this session (?categories=)")
    if scope["tool_allow"] and spec.name not in scope["tool_allow"]:
        return Refusal("tool_denied", f"tool {spec.name!r} is not in the API key's tool allowlist")
    if spec.name in scope["tool_deny"]:
        return Refusal("tool_denied", f"tool {spec.name!r} is in the API key's tool denylist")
    if spec.meta.admin_only and not is_admin:
        return Refusal("admin_only", f"tool {spec.name!r} is only offered to system administrators' keys")
    return None


# -- the call itself -----------------------------------------------------------


def check_identifiers(spec, args):
    for name in spec.meta.model_args + spec.meta.identifier_args:
        value = args.get(name)
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is None:
                continue
            if not isinstance(item, str) or not IDENTIFIER.match(item) or len(item) > 128:
                raise Refusal("invalid_input", f"{name}: {item!r} is not a valid identifier")


def check_model_allowed(model, scope):
    if scope["models"] and model not in scope["models"]:
        raise Refusal(
            "model_denied",
            f"model {model!r} is not in the API key's model allowlist ({', '.join(scope['models'])})",
        )


def check_models(spec, args, scope):
    for name in spec.meta.model_args:
        value = args.get(name)
        for item in value if isinstance(value, list | tuple) else [value]:
            if item:
                check_model_allowed(item, scope)


def check_write(spec, conn, args=None):
    """Refuse a write for read-only keys and under the production guard.

    ``args`` (the validated arguments) lets a tool declared with
    ``readonly_when`` pass this check for its read-only calls.
    """
    if not spec.meta.requires_write_for(args):
        return
    if conn.scope["read_only"]:
        raise Refusal(
            "read_only_key", f"the API key is read-only; {spec.name!r} is a {spec.kind} operation"
        )
    if not conn.settings["write_enabled"]:
        raise Refusal(
            "write_disabled",
            f"this instance has mcp_write_enabled off (production guard); {spec.name!r} is a {spec.kind} operation",
        )


def confirm_refusal(spec):
    """The refusal of a destructive call made without ``confirm`` by a client nobody can ask."""
    return Refusal(
        "confirm_required",
        f"{spec.name!r} is destructive. Nothing was done. Call again with confirm: true to proceed "
        "(or dry_run: true to preview).",
    )


def effective_timeout(spec, requested, settings):
    timeout = requested or settings["default_timeout"]
    timeout = max(1, min(120, int(timeout)))
    return max(timeout, spec.meta.min_timeout)


def effective_rate_limit(scope, settings):
    return scope["rate_limit"] or settings["rate_limit"]


# The stdio transport's rate limit (calls per minute): calls relayed by the stdio bridge (ocore-mcp-stdio), which
# marks its requests with this header, get it unless the key sets its own.
STDIO_RATE_LIMIT = 30
BRIDGE_HEADER = "X-Ocore-Transport"


def transport_scope(scope, bridged_transport):
    """The key's scope for a request relayed over ``bridged_transport`` (the bridge header's value)."""
    if (bridged_transport or "").strip().lower() == "stdio" and scope and not scope.get("rate_limit"):
        return {**scope, "rate_limit": STDIO_RATE_LIMIT}
    return scope
