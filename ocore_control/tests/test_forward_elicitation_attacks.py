"""Attacks on human confirmation across the control plane's hop (models/mcp_server.py), against the fake instance of
test_forward_elicitation.py, with three corpora under ``tests/adversarial/``:

- ``control_elicitation_question_cases.jsonl``: what a malicious or compromised instance may answer instead of its
  confirmation (a URL-mode elicitation, a password field, a sampling request, several requests, an unbounded
  message or state): nothing of it reaches the human, nothing is sent again, the call's row says why; what is
  relayed is rebuilt and its text neutralised (control and format characters), named with the instance's slug;
- ``control_elicitation_answer_cases.jsonl``: a 2026-07-28 client's retry: only its answer to the confirmation goes
  on, reduced to accept / decline / cancel; a state that is not the instance's printable bounded string is refused
  with nothing sent;
- ``control_elicitation_recheck_cases.jsonl``: what changes while a 2025 session's human thinks (kill switch, role,
  membership, key revoked or rescoped, credential, instance state): the call is not sent again when it would be
  refused now, and the claim sent again is the stricter one.

Also: a modern client that did not declare elicitation never gets an instance's question; a caller over its rate
limit makes the control plane open no connection to the instance; a bad ``timeout_seconds`` leaves no row
'running'."""

import json
from datetime import timedelta
from pathlib import Path

import mcp_types

from odoo import Command, fields
from odoo.tests import tagged

from ..lib import http as control_http
from .test_forward_elicitation import ASKED, STATE, TestForwardElicitation, _Params

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "adversarial"


def _cases(name):
    with open(CORPUS / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class _Undo(Exception):  # noqa: N818 - rolls a case's changes back
    pass


def _padded(case):
    """The case's InputRequiredResult, a field padded to the case's size when it says so."""
    asked = json.loads(json.dumps(case["asked"]))
    pad = case.get("pad")
    if pad:
        params = asked["inputRequests"]["confirm"]["params"]
        if pad["field"] == "message":
            params["message"] = "x" * pad["size"]
        elif pad["field"] == "state":
            asked["requestState"] = "v" * pad["size"]
        else:
            params["requestedSchema"]["properties"]["confirm"][pad["field"]] = "x" * pad["size"]
    return asked


@tagged("post_install", "-at_install")
class TestForwardElicitationAttacks(TestForwardElicitation):
    """(Inherits the fake instance and the helpers; the parent's tests run again, harmlessly.)"""

    def call_rows(self):
        """The rows of the forwarded calls (revoking a key also writes the end of its sessions)."""
        return self.rows().filtered(lambda row: row.tool_name == self.NAME)

    def _refused_question(self, case):
        for kind in ("session", "modern"):
            self.remote.asked = _padded(case)
            before = len(self.remote.requests)
            if kind == "session":
                conn, sent = self.session({"elicitation": {}}, {"action": "accept", "content": {"confirm": True}})
            else:
                conn, sent = self.modern({"elicitation": {"form": {}}}), []
            result = self.forward(conn)
            self.assertNotEqual(result.get("resultType"), "input_required", f"{case['id']} ({kind}): relayed")
            self.assertTrue(result["isError"], f"{case['id']} ({kind})")
            self.assertIn("does not relay", result["content"][0]["text"])
            self.assertEqual(sent, [], f"{case['id']} ({kind}): the human was asked")
            self.assertEqual(len(self.remote.requests), before + 1, f"{case['id']} ({kind}): sent again")
            row = self.rows()[-1]
            self.assertEqual((row.status, row.refusal_reason), ("error", "input_not_relayed"), case["id"])
            self.assertLess(len(row.error_message or ""), 1000, "the instance's text is not copied into the row")

    def test_instance_questions_corpus(self):
        cases = _cases("control_elicitation_question_cases.jsonl")
        self.assertGreater(len(cases), 30)
        for case in cases:
            with self.subTest(case=case["id"]):
                if "relay" not in case:
                    self._refused_question(case)
                    continue
                self.remote.asked = _padded(case)
                conn = self.modern({"elicitation": {}})
                result = self.forward(conn)
                self.assertEqual(set(result), {"resultType", "inputRequests", "requestState"}, case["id"])
                self.assertEqual(set(result["inputRequests"]), {"confirm"})
                request = result["inputRequests"]["confirm"]
                self.assertEqual(set(request), {"method", "params"})
                self.assertEqual(set(request["params"]), {"mode", "message", "requestedSchema"})
                shown = json.dumps(request, ensure_ascii=False)
                for absent in case["relay"].get("absent", []):
                    self.assertNotIn(absent, shown, case["id"])
                self.assertTrue(request["params"]["message"].startswith(
                    case["relay"].get("starts", "[instance remote_elicit, through the control plane] ")))
                # a 2025 session is asked the same neutralised question
                conn, sent = self.session({"elicitation": {}}, {"action": "decline"})
                self.forward(conn)
                self.assertEqual(sent[0]["params"]["message"], request["params"]["message"], case["id"])

    def test_client_answers_corpus(self):
        cases = _cases("control_elicitation_answer_cases.jsonl")
        conn = self.modern({"elicitation": {}})
        for case in cases:
            with self.subTest(case=case["id"]):
                before = len(self.remote.requests)
                state = "v" * case["state_pad"] if "state_pad" in case else case["state"]
                result = self.forward(conn, _Params(case["responses"], state))
                row = self.rows()[-1]
                if "refused" in case:
                    self.assertTrue(result["isError"])
                    self.assertEqual(len(self.remote.requests), before, f"{case['id']}: forwarded")
                    self.assertEqual((row.status, row.refusal_reason), ("refused", case["refused"]))
                    continue
                sent = self.remote.requests[-1]["params"]
                self.assertEqual(sent["inputResponses"], case["sent"], case["id"])
                self.assertEqual(sent["requestState"], state)
        # a model the SDK parsed goes through the same reduction
        answer = mcp_types.ElicitResult(action="accept", content={"confirm": True, "note": "x"})
        self.forward(conn, _Params({"confirm": answer}, STATE))
        self.assertEqual(self.remote.requests[-1]["params"]["inputResponses"],
                         {"confirm": {"action": "accept", "content": {"confirm": True}}})

    def _change(self, what):
        key, org = self.key, self.key.organization_id
        instance = self.env["ocore.control.instance"].search([("slug", "=", "remote_elicit")])
        member = org.member_ids.filtered(lambda m: m.user_id == key.user_id)
        if what == "org_disabled":
            org.mcp_enabled = False
        elif what == "org_archived":
            org.active = False
        elif what == "member_removed":
            member.unlink()
        elif what == "member_viewer":
            org.member_ids = [Command.create({"user_id": self.env.ref("base.user_admin").id, "role": "owner"})]
            member.role = "viewer"
        elif what == "key_archived":
            key.active = False
        elif what == "key_expired":
            key.expiration_date = fields.Datetime.now() - timedelta(minutes=1)
        elif what == "user_archived":
            key.user_id.sudo().active = False
        elif what == "key_scoped_elsewhere":
            other = instance.copy({"slug": "elsewhere_elicit", "name": "Elsewhere"})
            key.instance_ids = [Command.set(other.ids)]
        elif what == "credential_revoked":
            instance.sudo().write({"credential_state": "revoked"})
        elif what == "instance_stopped":
            instance.status = "stopped"
        elif what == "key_read_only":
            key.read_only = True
        elif what == "writes_off":
            instance.mcp_write_enabled = False
        elif what == "key_tool_deny":
            key.tool_denylist = "unlink"
        else:
            raise AssertionError(what)
        self.env.flush_all()

    def test_changes_while_the_human_thinks_corpus(self):
        for case in _cases("control_elicitation_recheck_cases.jsonl"):
            with self.subTest(case=case["id"]):
                with self.assertRaises(_Undo):  # (the case's changes rolled back with the savepoint)
                    with self.env.cr.savepoint():
                        self._one_change(case)
                        raise _Undo
                self.env.invalidate_all()
                self.env.registry.clear_cache()

    def _one_change(self, case):
        conn, sent = self.session({"elicitation": {}}, {"action": "accept", "content": {"confirm": True}})
        emit = conn.emit

        def emit_and_change(message):
            emit(message)
            if message.get("method") == "elicitation/create":
                self._change(case["change"])

        conn.emit = emit_and_change
        before = len(self.remote.requests)
        result = self.forward(conn)
        self.assertEqual(len(sent), 1)
        row = self.call_rows()[-1]
        if "reason" in case:
            self.assertTrue(result["isError"], case["id"])
            self.assertIn("nothing was done", result["content"][0]["text"])
            self.assertEqual(len(self.remote.requests), before + 1, f"{case['id']}: sent again")
            self.assertEqual((row.status, row.refusal_reason, row.confirmation),
                             ("refused", case["reason"], "accepted (elicitation)"), case["id"])
            return
        self.assertEqual(len(self.remote.requests), before + 2)
        first, second = self.remote.requests[-2:]
        claim = _claims(second)["scp"]
        for name, value in case["claim"].items():
            if isinstance(value, list):
                self.assertTrue(set(value) <= set(claim[name]), f"{case['id']}: {claim}")
            else:
                self.assertEqual(claim[name], value, f"{case['id']}: {claim}")
        self.assertEqual(_claims(first)["cid"], _claims(second)["cid"], "one correlation id")

    def test_decline_after_kill_switch_tells_nothing(self):
        conn, _sent = self.session({"elicitation": {}}, {"action": "decline"})
        emit = conn.emit

        def emit_and_change(message):
            emit(message)
            self._change("org_disabled")

        conn.emit = emit_and_change
        before = len(self.remote.requests)
        result = self.forward(conn)
        self.assertTrue(result["isError"])
        self.assertEqual(len(self.remote.requests), before + 1, "the kill switch: no request at all")
        row = self.rows()[-1]
        self.assertEqual((row.status, row.refusal_reason, row.confirmation),
                         ("refused", "mcp_disabled", "decline (elicitation)"))

    def test_client_without_the_capability_never_gets_a_question(self):
        self.remote.asked = json.loads(json.dumps(ASKED))  # an instance that asks whatever the request declared
        for conn, sent in ((self.modern(), []), self.session({})):
            result = self.forward(conn)
            self.assertNotEqual(result.get("resultType"), "input_required")
            self.assertTrue(result["isError"])
            self.assertEqual(sent, [])
            self.assertEqual(self.rows()[-1].refusal_reason, "input_not_relayed")

    def test_instance_asking_again_is_asked_once(self):
        self.remote.always_ask = True
        conn, sent = self.session({"elicitation": {}}, {"action": "accept", "content": {"confirm": True}})
        before = len(self.remote.requests)
        result = self.forward(conn)
        self.assertEqual((len(sent), len(self.remote.requests) - before), (1, 2), "one question, two hops")
        self.assertIn("asked for the confirmation again", result["content"][0]["text"])
        row = self.call_rows()[-1]
        self.assertEqual((row.status, row.confirmation), ("error", "accepted (elicitation)"))

    def test_only_form_elicitation_is_declared_to_the_instance(self):
        for caps in ({"elicitation": {"form": {}, "url": {}}, "sampling": {}, "roots": {"listChanged": True}},
                     {"elicitation": {"form": {"x": "y" * 1000}}}, {"elicitation": {}}):
            self.forward(self.modern(caps))
            self.assertEqual(self.sent_caps(), {"elicitation": {"form": {}}}, caps)
        self.forward(self.modern({"elicitation": {"url": {}}}))
        self.assertEqual(self.sent_caps(), {}, "URL mode only: nothing")

    def test_rate_limited_caller_opens_no_connection(self):
        self.key.rate_limit = 1
        self.env.registry.clear_cache()
        conn = self.modern()
        self.forward(conn)
        for kept in control_http._pool().values():  # (no kept-alive connection to reuse)
            kept.close()
        control_http._pool().clear()
        opened = self.remote.connections
        result = self.forward(self.modern())
        self.assertIn("calls in the last minute", result["content"][0]["text"])
        self.assertEqual(self.remote.connections, opened, "a refused call opened a connection to the instance")

    def test_bad_timeout_is_no_error(self):
        for value in ("abc", -5, 1e308, True, [1], None, 0):
            with self.subTest(value=value):
                result = self.forward(self.modern(), arguments={"ids": [1], "timeout_seconds": value})
                self.assertIn("confirm: true", result["content"][0]["text"])
                self.assertNotEqual(self.rows()[-1].status, "running")


def _claims(request):
    """The claims of the assertion a request to the fake instance carried (its payload, not verified here)."""
    import base64  # noqa: PLC0415 - test helper

    token = request["_assertion"]
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


@tagged("post_install", "-at_install")
class TestForwardHumanKey(TestForwardElicitation):
    """A control-plane key that requires a human confirmation (its "Human confirmation required"): ``confirm:
    true`` does not run a destructive instance tool through the control plane (it did: the flag was never read on
    the forwarded path); the instance asks the human through a client that can elicit, any other is refused
    before anything is sent (corpus ``control_elicitation_human_key_cases.jsonl``)."""

    def test_human_key_corpus(self):
        self.key.human_confirmation = True
        for case in _cases("control_elicitation_human_key_cases.jsonl"):
            with self.subTest(case=case["id"]):
                before = len(self.remote.requests)
                if case.get("session"):
                    conn, sent = self.session(case["caps"], {"action": "decline"})
                else:
                    conn, sent = self.modern(case["caps"]), []
                result = self.forward(conn, arguments=dict(case["arguments"]))
                if case["expect"] == "refused":
                    self.assertTrue(result["isError"])
                    self.assertIn("requires a human confirmation", result["content"][0]["text"])
                    self.assertEqual(len(self.remote.requests), before, f"{case['id']}: sent")
                    self.assertEqual(self.rows()[-1].refusal_reason, "confirm_required")
                    continue
                forwarded = self.remote.requests[before]["params"]["arguments"]
                if case["expect"] == "as_is":
                    self.assertEqual(forwarded, case["arguments"], case["id"])
                    continue
                self.assertNotIn("confirm", forwarded, f"{case['id']}: confirm: true went on")
                self.assertTrue(sent or result.get("resultType") == "input_required", case["id"])
