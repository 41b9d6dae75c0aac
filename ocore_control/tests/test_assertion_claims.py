"""An assertion's claims are numbers and strings where PyJWT required them (corpus
``tests/adversarial/assertion_claim_cases.jsonl``): a NaN ``iat`` compared false with everything, so an assertion
signed with one passed the register's epoch check (refused after a crash recovery otherwise) and its life bound; a
NaN ``exp`` reached PostgreSQL as a timestamp (an error, not a refusal). Each case is signed with the control
plane's real key for the link: only the claims are wrong, and each must be refused cleanly."""

import base64
import json
import time
from pathlib import Path

from odoo import Command
from odoo.tests import TransactionCase

from odoo.addons.ocore_mcp.lib import compat

CASES = Path(__file__).resolve().parents[2] / "tests" / "adversarial" / "assertion_claim_cases.jsonl"
NUMBERS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class TestAssertionClaims(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        settings = env["ocore.mcp.server"]._ocore_settings()
        users = env["res.users"].with_context(no_reset_password=True)
        cls.alice = users.create({"name": "Alice", "login": "alice_claims_ctl", compat.user_groups_field(users): [
            Command.set([env.ref("base.group_user").id, env.ref("ocore_mcp.group_mcp_user").id])]})
        org = env["ocore.control.organization"].create({
            "name": "Claims agency", "member_ids": [Command.create({"user_id": cls.alice.id, "role": "owner"})]})
        cls.instance = env["ocore.control.instance"].create({
            "name": "Self", "slug": settings["slug"], "organization_id": org.id, "environment": "staging",
            "url": "http://127.0.0.1:1"})
        link = env["ocore.mcp.control.link"].create({"name": "CP"})
        token = link.action_generate_token()
        cls.private, public = cls.instance._ocore_signing_key(1)
        env["ocore.mcp.control.link"]._ocore_enrol(token, cls.instance._ocore_issuer(), cls.instance._ocore_kid(1),
                                                   public)
        cls.instance.write({"credential_generation": 1, "credential_state": "active", "status": "running"})

    def signed(self, changes):
        """A fresh assertion of the control plane for alice, its claims changed by ``changes``, signed again."""
        base = self.instance._ocore_assertion("alice_claims_ctl", {}, "cid-claims")
        head, body, _sig = base.split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        for name, value in changes.items():
            if value == "NOW_STR":
                value = str(int(time.time()))
            claims[name] = NUMBERS.get(value, value) if isinstance(value, str) else value
        signing_input = head.encode() + b"." + _b64(json.dumps(claims, separators=(",", ":")).encode())
        return (signing_input + b"." + _b64(self.private.sign(signing_input))).decode()

    def test_the_untouched_assertion_is_accepted(self):
        key, auth = self.env["ocore.mcp.key"]._ocore_authenticate(self.signed({}))
        self.assertTrue(key and auth, "the re-signed assertion itself is valid")

    def test_corpus(self):
        cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
        self.assertGreaterEqual(len(cases), 10)
        keys = self.env["ocore.mcp.key"]
        for case in cases:
            with self.subTest(case["id"]):
                token = self.signed(case["set"])
                try:
                    with self.env.cr.savepoint():
                        key, _auth = keys._ocore_authenticate(token)
                except Exception as exc:  # noqa: BLE001
                    self.fail(f"{case['id']}: an error instead of a refusal: {type(exc).__name__}: {exc}")
                self.assertFalse(key, f"{case['id']}: accepted")
