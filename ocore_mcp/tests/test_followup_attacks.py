"""Follow-ups of an attacker's pass: open streams per key (TestStreamLimit)."""

from odoo.tests import TransactionCase

from ..models.mcp_stream import DEFAULT_MAX_STREAMS, PARAM, STALE_SECONDS
from ..service import policy


class TestStreamLimit(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.keys = cls.env["ocore.mcp.key"]
        admin = cls.env.ref("base.user_admin")
        cls.key, _secret = cls.keys._ocore_create_key("streams", admin)
        cls.other, _secret = cls.keys._ocore_create_key("streams other", admin)
        cls.limit = cls.env["ocore.mcp.stream.limit"]

    def test_default_is_sane(self):
        self.env["ir.config_parameter"].sudo().set_param(PARAM, False)
        self.assertEqual(self.limit._ocore_stream_limit(), DEFAULT_MAX_STREAMS)
        self.assertTrue(1 <= DEFAULT_MAX_STREAMS <= 50)
        for junk in ("0", "-3", "many"):
            self.env["ir.config_parameter"].sudo().set_param(PARAM, junk)
            self.assertGreaterEqual(self.limit._ocore_stream_limit(), 1, junk)

    def test_cap_counts_every_kind_and_frees_on_close(self):
        self.env["ir.config_parameter"].sudo().set_param(PARAM, "3")
        ids = [self.limit._ocore_stream_open(self.key.id, kind, "c") for kind in ("sse", "get", "listen")]
        with self.assertRaisesRegex(policy.Refusal, "already holds 3 open streams") as caught:
            self.limit._ocore_stream_open(self.key.id, "listen")
        self.assertEqual(caught.exception.code, "too_many_streams")
        self.assertEqual(self.limit._ocore_open_streams(self.key.id), 3)
        # another key is counted apart
        self.limit._ocore_stream_open(self.other.id, "sse")
        self.limit._ocore_stream_close(ids[0])
        self.limit._ocore_stream_open(self.key.id, "sse")
        with self.assertRaises(policy.Refusal):
            self.limit._ocore_stream_open(self.key.id, "get")

    def test_a_stale_stream_stops_counting_and_must_end(self):
        self.env["ir.config_parameter"].sudo().set_param(PARAM, "1")
        stale = self.limit._ocore_stream_open(self.key.id, "sse")
        self.assertTrue(self.limit._ocore_stream_alive(stale))
        with self.assertRaises(policy.Refusal):
            self.limit._ocore_stream_open(self.key.id, "sse")
        # its process died: no heartbeat for longer than STALE_SECONDS
        self.env.cr.execute("UPDATE ocore_mcp_open_stream SET heartbeat = heartbeat - make_interval(secs => %s) "
                            "WHERE id = %s", (STALE_SECONDS + 1, stale))
        fresh = self.limit._ocore_stream_open(self.key.id, "sse")
        self.assertTrue(fresh)
        self.assertFalse(self.limit._ocore_stream_alive(stale), "a stream whose row was purged is told to end")
        self.assertTrue(self.limit._ocore_stream_alive(fresh, "listen-x"))
