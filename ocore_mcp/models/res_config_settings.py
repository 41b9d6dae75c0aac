import hashlib
import re

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, ValidationError

from ..service import posthog as ph

PARAM = "ocore_mcp."
POSTHOG_PARAM = PARAM + "posthog_"
POSTHOG_SECRET_PARAM = POSTHOG_PARAM + "personal_api_key"  # a system parameter: system administrators only
DEFAULT_SLOW_RPC_MS = 1000
DEFAULTS = {
    "environment": "development",
    "enabled": True,
    "rate_limit": 100,
    "default_timeout": 15,
    "max_response_kb": 50,
    # the largest request body read (KB): the attachment tool's 10 MB are ~14 MB of base64, and an upload
    # somewhat over that must still reach the tool for its clear refusal (a 413 is sent before the body is
    # read: a client still sending it may only see the connection close)
    "max_body_kb": 24576,
    "max_batch": 100,  # JSON-RPC requests in one batch (the legacy revisions' arrays)
}


RESERVED_SLUG = "ocore"  # the prefix of platform tools (ocore_list_instances …)


# MCP clients refuse a tool name over 64 characters (^[a-zA-Z0-9_-]{1,64}$): <slug>_<tool> with a slug of at
# most SLUG_MAX characters leaves 35 for the tool's own name (the longest built-in one has 23; the Odoo test
# TestSlugBound checks every tool of the registry). tools/list of every tool is measured at this length too.
TOOL_NAME_MAX = 64
SLUG_MAX = 28
SLUG_HASH = 6  # hex digits of the hash that ends a cut slug


def normalize_slug(value):
    """``value`` lower-cased, every run of other characters than a-z and 0-9 made one ``_`` (not bounded)."""
    return re.sub(r"[^a-z0-9]+", "_", (value or "").lower()).strip("_")


def default_slug(dbname):
    """The slug of a database name (or of a slug typed in the settings): normalized, never the platform tools'
    prefix, at most SLUG_MAX characters (a longer one is cut and ends with a hash of the whole, so that two
    long names sharing their beginning still differ: ``a_very_long_database_1f2e3d``)."""
    slug = normalize_slug(dbname or "odoo") or "odoo"
    # an instance slugged "ocore" would name its tools like the platform tools: ocore_<tool>
    if slug == RESERVED_SLUG:
        return f"{slug}_db"
    if len(slug) <= SLUG_MAX:
        return slug
    digest = hashlib.sha256(slug.encode()).hexdigest()[:SLUG_HASH]
    return f"{slug[:SLUG_MAX - SLUG_HASH - 1].rstrip('_')}_{digest}"


def _as_bool(value, default):
    if value in (None, False, ""):
        return default
    return str(value).lower() in ("1", "true", "yes", "on")


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    ocore_mcp_slug = fields.Char(
        string="Instance slug",
        help=f"Tools are named <slug>_<tool>. Lower-case letters, digits and _, at most {SLUG_MAX} characters. "
        "Default: the database name (a longer one is cut and ends with a short hash).",
    )
    ocore_mcp_environment = fields.Selection(
        [("development", "Development"), ("staging", "Staging"), ("production", "Production")],
        string="Environment",
    )
    ocore_mcp_write_enabled = fields.Boolean(
        string="Allow MCP writes",
        help="Production guard: when off, every write tool is refused whatever the key allows.",
    )
    ocore_mcp_enabled = fields.Boolean(
        string="MCP enabled", help="Kill switch: when off, every MCP call is refused at once."
    )
    ocore_mcp_rate_limit = fields.Integer(string="Calls per minute per key")
    ocore_mcp_default_timeout = fields.Integer(string="Default timeout (s)")
    ocore_mcp_max_response_kb = fields.Integer(string="Default max response size (KB)")
    ocore_mcp_files_root = fields.Char(
        string="Custom addons root", help="Directory the file tools are sandboxed to."
    )
    ocore_mcp_allowed_origins = fields.Char(
        string="Allowed browser origins",
        help="Origins of web pages allowed to call the MCP and OAuth endpoints (comma separated, or * for "
        "any); they also get CORS headers. The server's own origin is always allowed, requests without "
        "an Origin header (non-browser clients) too; any other Origin is refused with 403.",
    )
    ocore_mcp_max_body_kb = fields.Integer(string="Max request body (KB)")
    ocore_mcp_max_batch = fields.Integer(string="Max JSON-RPC batch")
    ocore_mcp_posthog_capture = fields.Boolean(
        string="PostHog capture",
        help="Send page views, module usage, web vitals, errors, slow RPCs and MCP tool calls to PostHog.",
    )
    ocore_mcp_posthog_host = fields.Char(
        string="PostHog host", help="e.g. https://eu.i.posthog.com, or your self-hosted PostHog's URL."
    )
    ocore_mcp_posthog_project_api_key = fields.Char(
        string="Project API key", help="The project's public key (phc_…) events are captured with."
    )
    ocore_mcp_posthog_project_id = fields.Char(string="Project id", help="The monitoring tools query this project.")
    ocore_mcp_posthog_personal_api_key = fields.Char(
        string="Personal API key",
        help="A personal API key (phx_…) with query, feature flag and survey read scopes, for the monitoring "
        "tools. Write-only: it is stored as a system parameter and never shown again; leave empty to keep it.",
    )
    ocore_mcp_posthog_personal_api_key_set = fields.Boolean(string="Personal API key set", readonly=True)
    ocore_mcp_posthog_personal_data = fields.Boolean(
        string="Include personal data",
        help="Off: events carry a user identifier only (instance:user id). On: names, logins, e-mail addresses "
        "and error messages too.",
    )
    ocore_mcp_posthog_slow_rpc_ms = fields.Integer(string="Slow RPC threshold (ms)")

    @api.model
    def get_values(self):
        res = super().get_values()
        settings = self.env["ocore.mcp.server"]._ocore_settings()
        res.update(
            ocore_mcp_slug=settings["slug"],
            ocore_mcp_environment=settings["environment"],
            ocore_mcp_write_enabled=settings["write_enabled"],
            ocore_mcp_enabled=settings["enabled"],
            ocore_mcp_rate_limit=settings["rate_limit"],
            ocore_mcp_default_timeout=settings["default_timeout"],
            ocore_mcp_max_response_kb=settings["max_response_kb"],
            ocore_mcp_files_root=settings["files_root"],
            ocore_mcp_allowed_origins=settings["allowed_origins"],
            ocore_mcp_max_body_kb=settings["max_body_kb"],
            ocore_mcp_max_batch=settings["max_batch"],
        )
        res.update(self._ocore_posthog_values())
        return res

    def set_values(self):
        super().set_values()
        if not self.env.user.has_group("base.group_system"):
            return
        icp = self.env["ir.config_parameter"].sudo()
        icp.set_param(PARAM + "slug", self._ocore_checked_slug())
        icp.set_param(PARAM + "environment", self.ocore_mcp_environment or "development")
        icp.set_param(PARAM + "write_enabled", "1" if self.ocore_mcp_write_enabled else "0")
        icp.set_param(PARAM + "enabled", "1" if self.ocore_mcp_enabled else "0")
        icp.set_param(PARAM + "rate_limit", max(1, self.ocore_mcp_rate_limit or DEFAULTS["rate_limit"]))
        icp.set_param(PARAM + "default_timeout", min(120, max(1, self.ocore_mcp_default_timeout or 15)))
        icp.set_param(PARAM + "max_response_kb", max(1, self.ocore_mcp_max_response_kb or 50))
        icp.set_param(PARAM + "files_root", self.ocore_mcp_files_root or False)
        icp.set_param(PARAM + "allowed_origins", (self.ocore_mcp_allowed_origins or "").strip() or False)
        icp.set_param(PARAM + "max_body_kb", max(64, self.ocore_mcp_max_body_kb or DEFAULTS["max_body_kb"]))
        icp.set_param(PARAM + "max_batch", max(1, self.ocore_mcp_max_batch or DEFAULTS["max_batch"]))
        self._ocore_posthog_set_values(icp)

    def _ocore_checked_slug(self):
        """The slug typed in the settings, normalized (False: the database name's), or a ValidationError when
        it is over SLUG_MAX characters: every tool is named <slug>_<tool>, and clients refuse names over 64."""
        typed = normalize_slug(self.ocore_mcp_slug)
        if not typed:
            return False
        if len(typed) > SLUG_MAX:
            raise ValidationError(_(
                "Instance slug: at most %(max)s characters (%(slug)s has %(count)s). Every tool is named "
                "<slug>_<tool>, and MCP clients refuse tool names over %(limit)s characters.",
                max=SLUG_MAX, slug=typed, count=len(typed), limit=TOOL_NAME_MAX))
        return default_slug(typed)

    @api.onchange("ocore_mcp_environment")
    def _onchange_ocore_mcp_environment(self):
        if self.ocore_mcp_environment == "production":
            self.ocore_mcp_write_enabled = False

    # -- monitoring (PostHog): read and written through ocore.mcp.posthog's settings ------------------------

    def _ocore_posthog_values(self):
        config = self.env["ocore.mcp.posthog"]._ocore_posthog_config()
        return {
            "ocore_mcp_posthog_capture": config["capture"],
            "ocore_mcp_posthog_host": config["host"],
            "ocore_mcp_posthog_project_api_key": config["project_api_key"],
            "ocore_mcp_posthog_project_id": config["project_id"],
            "ocore_mcp_posthog_personal_api_key": False,  # never sent back to the browser
            "ocore_mcp_posthog_personal_api_key_set": config["personal_api_key_set"],
            "ocore_mcp_posthog_personal_data": config["personal_data"],
            "ocore_mcp_posthog_slow_rpc_ms": config["slow_rpc_ms"],
        }

    def _ocore_posthog_set_values(self, icp):
        host = (self.ocore_mcp_posthog_host or "").strip()
        if host and not ph.normalize_host(host):
            raise ValidationError(_("PostHog host: an http(s) URL, e.g. https://eu.i.posthog.com"))
        icp.set_param(POSTHOG_PARAM + "capture", "1" if self.ocore_mcp_posthog_capture else "0")
        icp.set_param(POSTHOG_PARAM + "host", ph.normalize_host(host) or False)
        project_key = (self.ocore_mcp_posthog_project_api_key or "").strip()
        icp.set_param(POSTHOG_PARAM + "project_api_key", project_key or False)
        icp.set_param(POSTHOG_PARAM + "project_id", (self.ocore_mcp_posthog_project_id or "").strip() or False)
        icp.set_param(POSTHOG_PARAM + "personal_data", "1" if self.ocore_mcp_posthog_personal_data else "0")
        icp.set_param(POSTHOG_PARAM + "slow_rpc_ms", max(1, self.ocore_mcp_posthog_slow_rpc_ms or DEFAULT_SLOW_RPC_MS))
        secret = (self.ocore_mcp_posthog_personal_api_key or "").strip()
        if secret:  # write-only: an empty field keeps the stored key
            icp.set_param(POSTHOG_SECRET_PARAM, secret)

    def action_ocore_posthog_forget_personal_key(self):
        """Remove the stored personal API key (the monitoring tools stop querying PostHog)."""
        if not self.env.user.has_group("base.group_system"):
            raise AccessError(_("Only system administrators manage the PostHog settings."))
        self.env["ir.config_parameter"].sudo().set_param(POSTHOG_SECRET_PARAM, False)
        return {"type": "ir.actions.client", "tag": "reload"}
