"""A human confirms destructive calls: the pipeline's confirm step (models/mcp_approval.py).

Keys with "Human confirmation required": a client that cannot elicit gets a pending approval that only the key's
owner or an MCP manager decides; the approved call runs once, as the key owner. 2026-07-28 clients that declare
elicitation get an InputRequiredResult and answer it in a retry."""

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from ..lib import protocol
from ..lib.errors import ProtocolError
from ..service import elicitation as elicit
from .common import McpToolCase

ELICITING = {"elicitation": {"form": {}}}


@tagged("post_install", "-at_install")
class TestApproval(McpToolCase):
    KEY_NAME = "approval tests"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Approval = cls.env["ocore.mcp.approval"]
        cls.Audit = cls.env["ocore.mcp.audit.log"]

    def modern(self, key=None, capabilities=None, responses=None, state=None):
        conn = self.conn(key)
        conn.client_capabilities = capabilities or {}
        conn.input_responses = responses
        conn.request_state = state
        return conn

    def call_unlink(self, partner, conn=None, confirm=True):
        args = {"model": "res.partner", "ids": [partner.id]}
        if confirm:
            args["confirm"] = True
        return self.server._ocore_call_tool(conn or self.conn(), f"{self.slug}_unlink", args)

    def last_audit(self):
        return self.Audit.search([("tool", "=", "unlink")], order="id desc", limit=1)

    def approvals(self, key=None):
        return self.Approval.search([("key_id", "=", (key or self.key).id)])

    # -- keys without the setting: today's confirm flow --------------------------------------------

    def test_confirm_flow_unchanged_without_setting(self):
        partner = self.Partner.create({"name": "Plain confirm"})
        result = self.call_unlink(partner, confirm=False)
        self.assertTrue(result["isError"])
        self.assertIn("confirm: true", result["content"][0]["text"])
        self.assertTrue(partner.exists())
        self.assertFalse(self.approvals())
        self.assertFalse(self.call_unlink(partner)["isError"])
        self.assertFalse(partner.exists())
        self.assertFalse(self.last_audit().confirmation)

    # -- pending approvals ------------------------------------------------------------------------------

    def test_approval_pending_then_approved_runs_once(self):
        self.key.human_confirmation = True
        partner = self.Partner.create({"name": "Needs approval"})
        result = self.call_unlink(partner)  # confirm: true is not enough
        text = result["content"][0]["text"]
        self.assertTrue(result["isError"])
        approval = self.approvals()
        self.assertEqual(len(approval), 1)
        self.assertIn(f"approval #{approval.id}", text)
        self.assertIn("nothing was done", text)
        self.assertTrue(partner.exists())
        self.assertEqual((approval.state, approval.user_id, approval.tool_name),
                         ("pending", self.admin, f"{self.slug}_unlink"))
        self.assertIn(str(partner.id), approval.arguments)
        row = self.last_audit()
        self.assertEqual((row.status, row.refusal_reason), ("refused", "approval_pending"))
        # asked again: the same approval, not a second one
        self.assertIn("still awaits", self.call_unlink(partner)["content"][0]["text"])
        self.assertEqual(self.approvals(), approval)
        approval.with_user(self.admin).action_approve()
        self.assertEqual((approval.state, approval.decided_by), ("approved", self.admin))
        result = self.call_unlink(partner)
        self.assertFalse(result["isError"], result["content"][0]["text"])
        self.assertFalse(partner.exists())
        self.assertEqual(approval.state, "executed")
        self.assertEqual(self.last_audit().confirmation, f"approval #{approval.id}")
        # consumed: the same call again needs a new approval
        other = self.Partner.create({"name": "Other"})
        self.call_unlink(other)
        self.assertEqual(len(self.approvals()), 2)
        self.assertTrue(other.exists())

    def test_approval_is_bound_to_the_arguments(self):
        self.key.human_confirmation = True
        first, second = self.Partner.create([{"name": "First"}, {"name": "Second"}])
        self.call_unlink(first)
        self.approvals().action_approve()
        self.call_unlink(second)  # other arguments: not approved, a pending approval of its own
        self.assertTrue(second.exists())
        self.assertEqual(len(self.approvals()), 2)

    def test_denial_changes_nothing(self):
        self.key.human_confirmation = True
        partner = self.Partner.create({"name": "Denied"})
        self.call_unlink(partner)
        approval = self.approvals()
        approval.action_deny()
        self.assertEqual(approval.state, "denied")
        result = self.call_unlink(partner)
        self.assertTrue(result["isError"])
        self.assertTrue(partner.exists())
        self.assertIn(f"approval #{approval.id}, was denied", result["content"][0]["text"])
        with self.assertRaises(UserError):
            approval.action_approve()  # decided already

    def test_only_owner_or_manager_decides(self):
        owner = self.make_user("approval_owner", [self.env.ref("base.group_user").id,
                                                  self.env.ref("base.group_partner_manager").id,
                                                  self.env.ref("ocore_mcp.group_mcp_user").id])
        stranger = self.make_user("approval_stranger", [self.env.ref("base.group_user").id,
                                                        self.env.ref("ocore_mcp.group_mcp_user").id])
        manager = self.make_user("approval_manager", [self.env.ref("base.group_user").id,
                                                      self.env.ref("base.group_partner_manager").id,
                                                      self.env.ref("ocore_mcp.group_mcp_manager").id])
        # a manager with fewer rights than the owner (no Contacts rights) neither reads nor decides the call
        poorer = self.make_user("approval_poorer_manager", [self.env.ref("base.group_user").id,
                                                            self.env.ref("ocore_mcp.group_mcp_manager").id])
        key, _secret = self.keys._ocore_create_key("owner key", owner, rate_limit=1000)
        key.human_confirmation = True
        partner = self.Partner.create({"name": "Owner's call"})
        self.call_unlink(partner, self.conn(key))
        approval = self.approvals(key)
        self.assertEqual(approval.user_id, owner)
        # the stranger neither sees nor decides it (record rule), nor writes it (no write access)
        self.assertFalse(self.Approval.with_user(stranger).search([("id", "=", approval.id)]))
        with self.assertRaises(AccessError):
            approval.with_user(stranger).action_approve()
        with self.assertRaises(AccessError):
            approval.with_user(owner).write({"state": "approved"})
        self.assertEqual(approval.state, "pending")
        self.assertFalse(self.Approval.with_user(poorer).search([("id", "=", approval.id)]))
        with self.assertRaises(AccessError):
            approval.with_user(poorer).action_approve()
        self.assertEqual(approval.state, "pending")
        # the owner and a manager with the owner's rights may
        self.assertEqual(self.Approval.with_user(owner).search([("id", "=", approval.id)]), approval)
        self.assertEqual(self.Approval.with_user(manager).search([("id", "=", approval.id)]), approval)
        approval.with_user(manager).action_approve()
        self.assertEqual((approval.state, approval.decided_by), ("approved", manager))

    def test_approved_call_runs_as_key_owner(self):
        # approved by an administrator, run with the owner's rights: an employee may not delete partners
        owner = self.make_user("approval_employee", [self.env.ref("base.group_user").id,
                                                     self.env.ref("ocore_mcp.group_mcp_user").id])
        key, _secret = self.keys._ocore_create_key("employee key", owner, rate_limit=1000)
        key.human_confirmation = True
        partner = self.Partner.create({"name": "Not the employee's to delete"})
        self.call_unlink(partner, self.conn(key))
        approval = self.approvals(key)
        approval.with_user(self.admin).action_approve()
        result = self.call_unlink(partner, self.conn(key))
        self.assertTrue(result["isError"])
        self.assertTrue(partner.exists())
        row = self.last_audit()
        self.assertEqual((row.user_id, row.confirmation), (owner, f"approval #{approval.id}"))

    def test_expired_approval(self):
        self.key.human_confirmation = True
        partner = self.Partner.create({"name": "Expires"})
        self.call_unlink(partner)
        approval = self.approvals()
        approval.sudo().expires_at = "2000-01-01 00:00:00"
        approval.flush_recordset()
        self.Approval._gc_expired()
        approval.invalidate_recordset()
        self.assertEqual(approval.state, "expired")

    # -- 2026-07-28: InputRequiredResult ------------------------------------------------------------------

    def test_modern_input_required_accept(self):
        partner = self.Partner.create({"name": "Modern accept"})
        first = self.call_unlink(partner, self.modern(capabilities=ELICITING), confirm=False)
        self.assertEqual(first["resultType"], "input_required")
        request = first["inputRequests"][elicit.INPUT_KEY]
        self.assertEqual(request["method"], "elicitation/create")
        self.assertEqual(request["params"]["requestedSchema"]["properties"]["confirm"]["type"], "boolean")
        self.assertIn(f"{self.slug}_unlink", request["params"]["message"])
        # the wire shape the SDK parses
        wire = protocol.serialize_result("tools/call", "2026-07-28", dict(first, _meta={}))
        self.assertEqual(wire["resultType"], "input_required")
        self.assertTrue(partner.exists())
        accept = {elicit.INPUT_KEY: {"action": "accept", "content": {"confirm": True}}}
        result = self.call_unlink(partner, self.modern(capabilities=ELICITING, responses=accept,
                                                  state=first["requestState"]), confirm=False)
        self.assertFalse(result["isError"], result["content"][0]["text"])
        self.assertFalse(partner.exists())
        self.assertEqual(self.last_audit().confirmation, "accepted (elicitation)")

    def test_modern_input_required_decline_and_tampering(self):
        partner = self.Partner.create({"name": "Modern decline"})
        first = self.call_unlink(partner, self.modern(capabilities=ELICITING), confirm=False)
        state = first["requestState"]
        for action in ("decline", "cancel"):
            answer = {elicit.INPUT_KEY: {"action": action}}
            result = self.call_unlink(partner, self.modern(capabilities=ELICITING, responses=answer, state=state),
                                 confirm=False)
            self.assertTrue(result["isError"])
            self.assertIn("nothing was done", result["content"][0]["text"])
            row = self.last_audit()
            self.assertEqual((row.status, row.refusal_reason, row.confirmation),
                             ("refused", "confirmation_declined", f"{action} (elicitation)"))
        self.assertTrue(partner.exists())
        accept = {elicit.INPUT_KEY: {"action": "accept", "content": {"confirm": True}}}
        # a forged state, and the state of another call, are refused
        for bad in (state[:-2] + "xx", "v1.e30.abc"):
            result = self.call_unlink(partner, self.modern(capabilities=ELICITING, responses=accept, state=bad),
                                 confirm=False)
            self.assertTrue(result["isError"])
        other = self.Partner.create({"name": "Other call"})
        result = self.call_unlink(other, self.modern(capabilities=ELICITING, responses=accept, state=state),
                             confirm=False)
        self.assertIn("another call", result["content"][0]["text"])
        self.assertTrue(partner.exists() and other.exists())

    def test_modern_missing_capability(self):
        partner = self.Partner.create({"name": "No capability"})
        first = self.call_unlink(partner, self.modern(capabilities=ELICITING), confirm=False)
        accept = {elicit.INPUT_KEY: {"action": "accept", "content": {"confirm": True}}}
        with self.assertRaises(ProtocolError) as caught:
            self.call_unlink(partner, self.modern(responses=accept, state=first["requestState"]), confirm=False)
        self.assertEqual(caught.exception.code, -32021)
        self.assertEqual(protocol.ERROR_HTTP_STATUS[caught.exception.code], 400)
        self.assertTrue(partner.exists())
        # a client without elicitation is never sent an input request: today's confirm refusal
        result = self.call_unlink(partner, self.modern(), confirm=False)
        self.assertNotIn("resultType", result)
        self.assertIn("confirm: true", result["content"][0]["text"])

    def test_modern_human_required_with_elicitation(self):
        # the key requires a human: confirm: true still gets the question when the client can elicit
        self.key.human_confirmation = True
        partner = self.Partner.create({"name": "Modern human"})
        first = self.call_unlink(partner, self.modern(capabilities=ELICITING))
        self.assertEqual(first["resultType"], "input_required")
        self.assertFalse(self.approvals())
        self.assertTrue(partner.exists())

    def test_dry_run_and_read_tools_never_ask(self):
        self.key.human_confirmation = True
        partner = self.Partner.create({"name": "Dry run"})
        result = self.server._ocore_call_tool(self.modern(capabilities=ELICITING), f"{self.slug}_unlink",
                                              {"model": "res.partner", "ids": [partner.id], "dry_run": True})
        self.assertFalse(result["isError"], result["content"][0]["text"])
        self.assertNotIn("resultType", result)
        self.ok("count", {"model": "res.partner"})
        self.assertFalse(self.approvals())

    def test_request_state_expires_and_is_bound(self):
        secret = "s3cret"
        now = 1_800_000_000
        token = elicit.seal(secret, "digest-a", now=now)
        self.assertIsNone(elicit.unseal(secret, token, "digest-a", now=now + 60))
        self.assertIn("expired", elicit.unseal(secret, token, "digest-a", now=now + elicit.STATE_SECONDS + 1))
        self.assertIn("another call", elicit.unseal(secret, token, "digest-b", now=now))
        self.assertIn("not issued", elicit.unseal("other", token, "digest-a", now=now))
        self.assertEqual(elicit.outcome({"action": "accept", "content": {"confirm": False}}), ("decline", False))
        self.assertEqual(elicit.outcome({"action": "accept", "content": {"confirm": "yes"}}), ("decline", False))
        self.assertEqual(elicit.outcome(None), ("cancel", False))
