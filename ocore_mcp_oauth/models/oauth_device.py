import secrets
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.addons.ocore_mcp.models.mcp_key import hash_token
from odoo.exceptions import UserError

# RFC 8628 §6.1: no vowels (no words), no ambiguous characters; 20^8 combinations
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
SLOW_DOWN_STEP = 5
# RFC 8628 §5.1: wrong user codes typed from one IP address or by one user are limited (brute force of a
# pending request's code): past MISS_LIMIT wrong codes within MISS_WINDOW seconds, every code is refused
# until the oldest of them is older than the window. Kept in the database: every worker sees them.
MISS_LIMIT = 10
MISS_WINDOW = 15 * 60


def new_user_code():
    chars = [secrets.choice(USER_CODE_ALPHABET) for _i in range(8)]
    return "".join(chars[:4]) + "-" + "".join(chars[4:])


def normalize_user_code(value):
    """What a person types: any case, with or without the dash or spaces."""
    letters = "".join(ch for ch in (value or "").upper() if ch.isalnum())
    return f"{letters[:4]}-{letters[4:]}" if len(letters) == 8 else None


class OAuthDeviceCode(models.Model):
    """A device authorization request (RFC 8628): a CLI polls with the device code while the user
    confirms the user code in a browser."""

    _name = "ocore.mcp.oauth.device"
    _description = "MCP OAuth Device Code"
    _order = "id desc"
    _rec_name = "user_code"

    device_code_hash = fields.Char(required=True, index=True, readonly=True, groups=fields.NO_ACCESS)
    user_code = fields.Char(required=True, index=True, readonly=True)
    client_id = fields.Many2one("ocore.mcp.oauth.client", required=True, ondelete="cascade", readonly=True)
    scope = fields.Char(readonly=True)
    resource = fields.Char(readonly=True)
    expires_at = fields.Datetime(required=True, readonly=True)
    interval = fields.Integer(default=5, readonly=True, help="Seconds the client must wait between polls.")
    last_poll_at = fields.Datetime(readonly=True)
    status = fields.Selection(
        [("pending", "Waiting for the user"), ("approved", "Approved"), ("denied", "Denied"),
         ("consumed", "Tokens issued")],
        default="pending", required=True, readonly=True,
    )
    authorization_id = fields.Many2one("ocore.mcp.oauth.authorization", ondelete="cascade", readonly=True)
    user_id = fields.Many2one("res.users", readonly=True, string="Approved by")
    family = fields.Char(readonly=True, default=lambda self: secrets.token_hex(12))
    is_expired = fields.Boolean(compute="_compute_is_expired")

    def init(self):
        self.env.cr.execute(
            """CREATE TABLE IF NOT EXISTS ocore_mcp_oauth_device_miss (
                   subject varchar NOT NULL,
                   missed_at timestamp without time zone NOT NULL DEFAULT (now() at time zone 'UTC'))"""
        )
        self.env.cr.execute("CREATE INDEX IF NOT EXISTS ocore_mcp_oauth_device_miss_subject_at "
                            "ON ocore_mcp_oauth_device_miss (subject, missed_at)")

    @api.model
    def _ocore_locked_out(self, subjects):
        """Seconds until one of ``subjects`` (e.g. ``ip:203.0.113.7``, ``user:7``) may type a user code
        again, or 0 when none of them is locked out."""
        self.env.cr.execute(
            """SELECT subject, count(*), min(missed_at) FROM ocore_mcp_oauth_device_miss
                WHERE subject = ANY(%s) AND missed_at > (now() at time zone 'UTC') - make_interval(secs => %s)
                GROUP BY subject HAVING count(*) >= %s""",
            (list(subjects), MISS_WINDOW, MISS_LIMIT),
        )
        rows = self.env.cr.fetchall()
        if not rows:
            return 0
        oldest = min(row[2] for row in rows)
        return max(1, int(MISS_WINDOW - (fields.Datetime.now() - oldest).total_seconds()))

    @api.model
    def _ocore_lookup_user_code(self, user_code, subjects):
        """(device, locked_seconds): the pending request of a typed user code, counting a wrong code
        against ``subjects``; while one of them is locked out, no code is looked up at all."""
        locked = self._ocore_locked_out(subjects)
        if locked:
            return self.sudo().browse(), locked
        device = self._ocore_find_user_code(user_code)
        if not device:
            self.env.cr.executemany("INSERT INTO ocore_mcp_oauth_device_miss (subject) VALUES (%s)",
                                    [(subject,) for subject in subjects])
        return device, 0

    def _compute_is_expired(self):
        now = fields.Datetime.now()
        for device in self:
            device.is_expired = device.expires_at <= now

    @api.model
    def _ocore_create(self, client, device_code, scope, resource, interval):
        ttl = self.env["ocore.mcp.oauth.token"]._ocore_ttl("device_code_ttl")
        for _attempt in range(10):
            user_code = new_user_code()
            if not self._ocore_find_user_code(user_code):
                break
        return self.sudo().create({
            "device_code_hash": hash_token(device_code),
            "user_code": user_code,
            "client_id": client.id,
            "scope": scope or False,
            "resource": resource,
            "interval": interval,
            "expires_at": fields.Datetime.now() + timedelta(seconds=ttl),
        }), ttl

    @api.model
    def _ocore_find(self, device_code):
        if not device_code or not isinstance(device_code, str) or len(device_code) > 200:
            return self.sudo().browse()
        return self.sudo().search([("device_code_hash", "=", hash_token(device_code))], limit=1)

    @api.model
    def _ocore_find_user_code(self, user_code):
        """The pending, unexpired request with this user code (sudo), or an empty recordset."""
        code = normalize_user_code(user_code)
        if not code:
            return self.sudo().browse()
        return self.sudo().search([
            ("user_code", "=", code), ("status", "=", "pending"), ("expires_at", ">", fields.Datetime.now()),
        ], limit=1)

    def _ocore_poll(self):
        """Record a poll; return True when the client polls faster than its interval (slow_down)."""
        self.ensure_one()
        now = fields.Datetime.now()
        too_fast = bool(self.last_poll_at and (now - self.last_poll_at).total_seconds() < self.interval)
        vals = {"last_poll_at": now}
        if too_fast:
            vals["interval"] = self.interval + SLOW_DOWN_STEP  # RFC 8628 §3.5
        self.sudo().write(vals)
        return too_fast

    def _ocore_decide(self, user, authorization):
        """The user approved (``authorization``) or denied (None) this request in the browser."""
        self.ensure_one()
        if self.status != "pending" or self.is_expired:
            raise UserError(_("This code has expired or was already used: start again on your device."))
        self.sudo().write({
            "status": "approved" if authorization else "denied",
            "authorization_id": authorization.id if authorization else False,
            "user_id": user.id,
        })

    @api.autovacuum
    def _gc_old_device_codes(self):
        limit = fields.Datetime.subtract(fields.Datetime.now(), days=1)
        self.sudo().search([("expires_at", "<", limit)]).unlink()
        self.env.cr.execute("DELETE FROM ocore_mcp_oauth_device_miss WHERE missed_at < "
                            "(now() at time zone 'UTC') - make_interval(secs => %s)", (MISS_WINDOW,))
