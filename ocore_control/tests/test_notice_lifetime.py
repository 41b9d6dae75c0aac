"""A control plane keeps a notice's nonce 5 minutes after receipt: a notice that lives longer could be replayed
once its nonce was purged (the purge runs before the replay's own check)."""

import json
import secrets
import time
from pathlib import Path

import jwt

from odoo.tests import TransactionCase

CASES = Path(__file__).resolve().parents[2] / "tests" / "adversarial" / "notice_lifetime_cases.jsonl"


class TestNoticeLifetime(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.env
        settings = env["ocore.mcp.server"]._ocore_settings()
        org = env["ocore.control.organization"].create({"name": "Notice agency"})
        cls.instance = env["ocore.control.instance"].create({
            "name": "Self", "slug": settings["slug"], "organization_id": org.id, "environment": "staging",
            "url": "http://127.0.0.1:1"})
        cls.link = env["ocore.mcp.control.link"].create({"name": "CP"})
        token = cls.link.action_generate_token()
        _private, public = cls.instance._ocore_signing_key(1)
        env["ocore.mcp.control.link"]._ocore_enrol(token, cls.instance._ocore_issuer(), cls.instance._ocore_kid(1),
                                                   public)
        cls.instance.write({"credential_generation": 1, "credential_state": "active", "status": "running"})
        cls.link.control_url = "http://127.0.0.1:1/ocore/control/tools_changed"
        cls.instance.notice_public_key = cls.link._ocore_notice_public_key()
        cls.slug = settings["slug"]

    def notice(self, life, iat_offset=0):
        """A notice signed with the instance's own notice key (what a compromised instance may sign)."""
        now = int(time.time()) + iat_offset
        claims = {"iss": f"ocore-instance:{self.slug}", "aud": self.link.issuer, "iat": now, "nbf": now - 5,
                  "exp": now + life, "jti": secrets.token_hex(16), "pur": "tools_changed", "why": "tools"}
        return jwt.encode(claims, self.link._ocore_notice_key(), algorithm="EdDSA", headers={"kid": self.link.kid})

    def age_nonces(self, seconds):
        self.env.flush_all()
        self.env.cr.execute("UPDATE ocore_control_nonce SET create_date = create_date - make_interval(secs => %s)",
                            (seconds,))

    def test_a_notice_outliving_its_nonce_is_refused(self):
        receive = self.env["ocore.control.instance"]._ocore_receive_notice
        token = self.notice(300)
        try:
            receive(token)
        except ValueError:
            return  # refused at once: it would outlive its nonce
        # accepted: 301 s later its nonce is purged while the notice is still valid (exp + 5 s leeway)
        self.age_nonces(301)
        with self.assertRaisesRegex(ValueError, "replayed|refused|not a tool list notice"):
            receive(token)

    def test_an_ordinary_notice_is_used_once_for_its_whole_life(self):
        receive = self.env["ocore.control.instance"]._ocore_receive_notice
        token = self.notice(60)
        self.assertEqual(receive(token), self.instance)
        # at the very end of its life (iat + 60 + 5 s leeway) its nonce is still there
        self.age_nonces(66)
        with self.assertRaisesRegex(ValueError, "replayed"):
            receive(token)

    def test_corpus_no_accepted_notice_outlives_its_nonce(self):
        """tests/adversarial/notice_lifetime_cases.jsonl: lives and iat shifts; an accepted notice is replayed at
        the last second it is still valid (exp + 5 s leeway): its nonce must still be there."""
        receive = self.env["ocore.control.instance"]._ocore_receive_notice
        cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
        self.assertGreaterEqual(len(cases), 10)
        for case in cases:
            with self.subTest(case["id"]):
                token = self.notice(case["life"], case["iat_offset"])
                received = time.time()
                try:
                    receive(token)
                except ValueError:
                    self.assertFalse(case["accepted"], "an ordinary notice is refused")
                    continue
                self.assertTrue(case["accepted"], "a notice that may outlive its nonce is accepted")
                exp = jwt.decode(token, options={"verify_signature": False})["exp"]
                with self.env.cr.savepoint():
                    self.age_nonces(int(exp + 5 - received) + 1)
                    with self.assertRaisesRegex(ValueError, "replayed"):
                        receive(token)
