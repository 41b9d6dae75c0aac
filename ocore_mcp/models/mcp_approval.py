"""A human confirms destructive calls: elicitation, or an approval in the Odoo backend.

``ocore.mcp.approval._ocore_confirm_step`` is the confirm step of the pipeline (``ocore.mcp.server._ocore_admit``),
called once every other check of a call passed. For a destructive call (not a dry run):

- without the key's "human confirmation required": ``confirm: true`` runs it; without it, a client that can
  elicit is asked (2025 sessions: ``elicitation/create`` on the call's stream; 2026-07-28: an
  ``InputRequiredResult``), any other gets today's "call again with confirm: true" refusal;
- with it: the client that can elicit is always asked (``confirm: true`` is not enough); a client that cannot
  gets a pending approval (this model): the key's owner (or an MCP manager) approves or denies it in the
  backend (MCP > Approvals, one click, a notification when the bus is installed); the client then calls the
  same tool again with the same arguments and the call runs once, through the same pipeline, as the key owner.

Accepted and declined confirmations are both audited (the call's row: ``confirmation``; a declined or pending
one is a refused row with its reason).
"""

import logging
import queue
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from ..lib import compat, protocol
from ..lib.errors import Refusal
from ..lib.redact import redact_params
from ..service import elicitation as elicit
from ..service import policy
from ..service.notify import hub

_logger = logging.getLogger(__name__)

APPROVAL_HOURS = 24  # a pending approval, and an approved call not yet run, expire after this
MANAGER_GROUP = "ocore_mcp.group_mcp_manager"


class _AnswerCancel:
    """Stands for the call's deadline while it waits for the human: a notifications/cancelled of the call
    ends the wait (``hub.track_call`` calls ``cancel_now``)."""

    def __init__(self, answers):
        self.answers = answers

    def cancel_now(self):
        self.answers.put({"cancelled": True})


class McpApproval(models.Model):
    _name = "ocore.mcp.approval"
    _description = "MCP Approval"
    _order = "id desc"
    _rec_name = "tool_name"

    key_id = fields.Many2one("ocore.mcp.key", string="API key", required=True, ondelete="cascade", readonly=True,
                             index=True)
    user_id = fields.Many2one("res.users", string="Key owner", required=True, readonly=True, index=True,
                              help="The call runs as this user; they (or an MCP manager) approve it.")
    company_id = fields.Many2one("res.company", required=True, readonly=True)
    tool_name = fields.Char(string="Tool", required=True, readonly=True)
    arguments = fields.Text(readonly=True, help="The call's arguments, secrets redacted.")
    description = fields.Text(string="What will happen", readonly=True)
    client_name = fields.Char(string="Client", readonly=True)
    session_id = fields.Char(readonly=True)
    # what the approval is bound to: HMAC of the key, the tool and the full arguments (never the arguments)
    call_digest = fields.Char(readonly=True, index=True, groups="base.group_system")
    state = fields.Selection(
        [("pending", "Pending"), ("approved", "Approved"), ("denied", "Denied"), ("expired", "Expired"),
         ("executed", "Executed")],
        default="pending", required=True, readonly=True, index=True,
    )
    decided_by = fields.Many2one("res.users", readonly=True)
    decided_at = fields.Datetime(readonly=True)
    expires_at = fields.Datetime(readonly=True, help="A pending approval, and an approved call not yet run, expire.")
    executed_at = fields.Datetime(readonly=True)

    # -- backend: approve / deny -------------------------------------------------------

    def _ocore_check_decider(self):
        """Only the key's owner or an MCP manager decides, on a pending approval they may read."""
        compat.check_access(self, "read")  # record rules: own approvals, all for managers, the user's companies
        manager = self.env.user.has_group(MANAGER_GROUP)
        for approval in self:
            if approval.user_id != self.env.user and not manager:
                raise AccessError(_("Only the key's owner or an MCP manager may decide on approval #%s.",
                                    approval.id))
            if approval.state != "pending" or (approval.expires_at and approval.expires_at < fields.Datetime.now()):
                raise UserError(_("Approval #%(id)s is no longer pending (%(state)s).", id=approval.id,
                                  state=approval.state))

    def action_approve(self):
        self._ocore_check_decider()
        now = fields.Datetime.now()
        self.sudo().write({"state": "approved", "decided_by": self.env.uid, "decided_at": now,
                           "expires_at": now + timedelta(hours=APPROVAL_HOURS)})
        return True

    def action_deny(self):
        self._ocore_check_decider()
        self.sudo().write({"state": "denied", "decided_by": self.env.uid, "decided_at": fields.Datetime.now()})
        return True

    @api.autovacuum
    def _gc_expired(self):
        self.env.cr.execute(
            """UPDATE ocore_mcp_approval SET state = 'expired'
                WHERE state IN ('pending', 'approved') AND expires_at < (now() at time zone 'UTC')"""
        )

    def _ocore_notify_owner(self):
        """A notification in the owner's web client (Odoo's bus, when installed); the list is MCP > Approvals."""
        if "bus.bus" not in self.env:
            return
        for approval in self:
            partner = approval.user_id.partner_id
            payload = {
                "type": "warning",
                "sticky": True,
                "title": _("MCP approval needed"),
                "message": _("An AI client asks to run %(tool)s with your key '%(key)s'. Approve or deny it in "
                             "MCP > Approvals (#%(id)s).", tool=approval.tool_name, key=approval.key_id.name,
                             id=approval.id),
            }
            try:
                if hasattr(partner, "_bus_send"):  # 18.0+
                    partner._bus_send("simple_notification", payload)
                else:
                    self.env["bus.bus"]._sendone(partner, "simple_notification", payload)
            except Exception:  # noqa: BLE001 - the approval stands without the toast
                _logger.warning("could not notify the owner of MCP approval %s", approval.id, exc_info=True)

    # -- the pipeline's confirm step -----------------------------------------------------------

    @api.model
    def _ocore_requires_human(self, key_id):
        self.env.cr.execute("SELECT human_confirmation FROM ocore_mcp_key WHERE id = %s", (key_id,))
        row = self.env.cr.fetchone()
        return bool(row and row[0])

    @api.model
    def _ocore_secret(self):
        return self.env["ir.config_parameter"].sudo().get_param("database.secret") or ""

    @api.model
    def _ocore_confirm_step(self, conn, spec, full_name, arguments, confirm, dry_run, base):
        """True when the call may run (confirmed), else raises a Refusal (``elicit.HumanStep`` for an
        InputRequiredResult, a pending approval or a missing client capability). ``base`` (the audit values)
        learns how the call was confirmed."""
        if spec.kind != "destructive" or dry_run:
            return confirm
        human = self._ocore_requires_human(conn.auth.id)
        if confirm and not human:
            return True
        version = conn.protocol_version
        can_elicit = elicit.can_form_elicit(conn.client_capabilities, version)
        if protocol.is_modern(version):
            return self._ocore_confirm_modern(conn, spec, full_name, arguments, human, can_elicit, base)
        if can_elicit and conn.emit is not None and conn.session_id:
            return self._ocore_confirm_on_stream(conn, spec, full_name, arguments, base)
        if human:
            return self._ocore_confirm_by_approval(conn, spec, full_name, arguments, base)
        raise policy.confirm_refusal(spec)

    def _ocore_what(self, conn, spec, full_name, arguments):
        return elicit.describe(spec, full_name, arguments, conn.settings["slug"])

    def _ocore_declined(self, full_name, action, base, waited=None):
        """The refusal of a call the human did not confirm (``action``: decline, cancel, timeout, or cancelled:
        the call itself cancelled by the client while it waited)."""
        if action == "cancelled":
            return Refusal("cancelled", "cancelled by the client while waiting for the user's confirmation; "
                                        "nothing was done")
        base["confirmation"] = f"{action} (elicitation)"
        if action == "decline":
            text = f"the user declined the call of {full_name}: nothing was done"
        elif action == "timeout":
            text = f"no answer from the user within {waited} s to the confirmation of {full_name}: nothing was done"
        else:
            text = f"the user cancelled the confirmation of {full_name}: nothing was done"
        return Refusal("confirmation_declined", text)

    def _ocore_confirm_on_stream(self, conn, spec, full_name, arguments, base):
        """2025 sessions: ``elicitation/create`` on the call's stream, then wait for the client's response."""
        what = self._ocore_what(conn, spec, full_name, arguments)
        params = elicit.request_params(what, f"run {full_name}", conn.protocol_version)
        action, waited = self._ocore_ask_on_stream(conn, params, base.get("request_id"))
        if action != "accept":
            raise self._ocore_declined(full_name, action, base, waited)
        base["confirmation"] = "accepted (elicitation)"
        return True

    @api.model
    def _ocore_ask_on_stream(self, conn, params, call_request_id):
        """Send ``elicitation/create`` (``params``) on the call's stream (``conn.emit``) and wait for the client's
        response, routed by whichever worker receives it through NOTIFY (``_ocore_client_response``); the
        request's transaction is committed first (no snapshot nor lock held while the human thinks). Returns
        (action, seconds waited at most): "accept", "decline", "cancel", "timeout", or "cancelled" (the call
        itself cancelled by the client: notifications/cancelled of ``call_request_id``). The confirm step of
        2025 sessions, and the control plane relaying an instance's question to its client."""
        configured = self.env["ir.config_parameter"].sudo().get_param("ocore_mcp.confirmation_timeout")
        waited = elicit.answer_timeout(int(configured) if (configured or "").isdigit() else None)
        request_id = elicit.new_request_id()
        dbname = self.env.cr.dbname
        entry, answers = hub.expect_answer(dbname, conn.session_id, request_id)
        cancel_entry = hub.track_call(dbname, conn.session_id, call_request_id, _AnswerCancel(answers))
        try:
            if not compat.in_odoo_test():
                # hold no snapshot nor lock while the human thinks (this transaction only read so far)
                self.env.cr.commit()  # pylint: disable=invalid-commit
            conn.emit({"jsonrpc": "2.0", "id": request_id, "method": "elicitation/create", "params": params})
            try:
                answer = answers.get(timeout=waited)
            except queue.Empty:
                return "timeout", waited
        finally:
            hub.drop_answer(entry)
            if cancel_entry:
                hub.untrack_call(cancel_entry)
        if isinstance(answer, dict) and answer.get("cancelled"):
            return "cancelled", waited
        action, accepted = elicit.outcome(answer)
        return ("accept" if accepted else action), waited

    def _ocore_confirm_modern(self, conn, spec, full_name, arguments, human, can_elicit, base):
        """2026-07-28: an InputRequiredResult, then the retry with ``inputResponses`` and the sealed
        ``requestState``."""
        secret = self._ocore_secret()
        bound = elicit.digest(secret, conn.auth.id, full_name, arguments)
        responses = conn.input_responses or {}
        if conn.request_state is not None or responses:
            if not can_elicit:
                raise elicit.missing_capability()
            problem = elicit.unseal(secret, conn.request_state, bound)
            if problem:
                raise Refusal("invalid_input", problem)
            if elicit.INPUT_KEY in responses:
                action, accepted = elicit.outcome(responses[elicit.INPUT_KEY])
                if not accepted:
                    raise self._ocore_declined(full_name, action, base)
                base["confirmation"] = "accepted (elicitation)"
                return True
        if can_elicit:
            what = self._ocore_what(conn, spec, full_name, arguments)
            result = {
                "resultType": "input_required",
                "inputRequests": {elicit.INPUT_KEY: {
                    "method": "elicitation/create",
                    "params": elicit.request_params(what, f"run {full_name}", conn.protocol_version),
                }},
                "requestState": elicit.seal(secret, bound),
            }
            raise elicit.HumanStep("input_required", "awaiting the user's confirmation (InputRequiredResult)",
                                   result=result)
        if human:
            return self._ocore_confirm_by_approval(conn, spec, full_name, arguments, base)
        raise policy.confirm_refusal(spec)

    def _ocore_confirm_by_approval(self, conn, spec, full_name, arguments, base):
        """A client that cannot elicit, on a key that requires a human: the approved call runs once; else a
        pending approval (made, or the one already waiting) and a refusal that says so."""
        bound = elicit.digest(self._ocore_secret(), conn.auth.id, full_name, arguments)
        cr = self.env.cr
        cr.execute(
            """UPDATE ocore_mcp_approval SET state = 'executed', executed_at = now() at time zone 'UTC'
                WHERE id = (SELECT id FROM ocore_mcp_approval
                             WHERE key_id = %s AND call_digest = %s AND state = 'approved'
                               AND expires_at > now() at time zone 'UTC'
                             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING id""",
            (conn.auth.id, bound),
        )
        row = cr.fetchone()
        if row:
            self.browse(row[0]).invalidate_recordset(["state", "executed_at"])
            base["confirmation"] = f"approval #{row[0]}"
            return True
        approvals = self.sudo().with_context(active_test=False)
        pending = approvals.search([("key_id", "=", conn.auth.id), ("call_digest", "=", bound),
                                    ("state", "=", "pending"), ("expires_at", ">", fields.Datetime.now())],
                                   limit=1)
        owner = self.env["res.users"].sudo().browse(conn.auth.user_id)
        if pending:
            base["confirmation"] = f"approval #{pending.id} pending"
            raise elicit.HumanStep("approval_pending", self._ocore_pending_text(pending, owner, again=True))
        denied = approvals.search([("key_id", "=", conn.auth.id), ("call_digest", "=", bound),
                                   ("state", "=", "denied")], limit=1)
        approval = approvals.create({
            "key_id": conn.auth.id,
            "user_id": conn.auth.user_id,
            "company_id": conn.auth.company_id,
            "tool_name": full_name,
            "arguments": redact_params({k: v for k, v in arguments.items() if k not in elicit.UNBOUND_ARGUMENTS},
                                       10000),
            "description": self._ocore_what(conn, spec, full_name, arguments),
            "client_name": conn.client_name,
            "session_id": conn.session_id,
            "call_digest": bound,
            "expires_at": fields.Datetime.now() + timedelta(hours=APPROVAL_HOURS),
        })
        approval._ocore_notify_owner()
        base["confirmation"] = f"approval #{approval.id} pending"
        text = self._ocore_pending_text(approval, owner, again=False)
        if denied:
            text += f" (an identical call, approval #{denied.id}, was denied before)"
        raise elicit.HumanStep("approval_pending", text)

    def _ocore_pending_text(self, approval, owner, again):
        state = "still awaits" if again else "now awaits"
        return (f"nothing was done: this destructive call {state} the approval of {owner.name} in Odoo (MCP > "
                f"Approvals, approval #{approval.id}; the API key requires a human confirmation and this client "
                f"cannot ask one). Once it is approved, call {approval.tool_name} again with exactly the same "
                f"arguments: it then runs once. The approval expires after {APPROVAL_HOURS} hours.")

    @api.model
    def _ocore_may_elicit(self, conn, msg):
        """Whether this tools/call (a 2025 session's) will ask the human: its POST is then answered with an SSE
        stream that carries the elicitation (controllers/main.py)."""
        if not elicit.can_form_elicit(conn.client_capabilities, conn.protocol_version):
            return False
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        name, args = params.get("name"), params.get("arguments") or {}
        if not isinstance(name, str) or not isinstance(args, dict):
            return False
        try:
            spec = self.env["ocore.mcp.server"]._ocore_resolve_tool(conn, name)
        except Refusal:
            return False
        if spec.kind != "destructive" or args.get("dry_run") is True:
            return False
        return args.get("confirm") is not True or self._ocore_requires_human(conn.auth.id)

    @api.model
    def _ocore_client_response(self, conn, msg):
        """A client's JSON-RPC response to one of our requests (the elicitation of a waiting call): published
        to the process that waits, whichever it is (NOTIFY, sent when this request commits)."""
        request_id = msg.get("id")
        if not conn.session_id or not isinstance(request_id, str) or not request_id.startswith("ocore-confirm-"):
            return
        result = msg.get("result") if isinstance(msg.get("result"), dict) else None
        action, accepted = elicit.outcome(result)
        answer = {"action": action, "content": {elicit.INPUT_KEY: accepted}}  # small: NOTIFY's payload limit
        hub.publish(self.env.cr, conn.session_id, {"t": "answer", "r": request_id, "m": answer})

