"""A session opened or looked up by a request is read from the cache its one statement filled (no query of its own),
with the values the database holds; a call's thread rebuilds it from the request's values without a query."""

import json

from odoo.tests import TransactionCase, tagged

from ..models.mcp_session import SESSION_FIELDS


@tagged("post_install", "-at_install")
class TestSessionLookup(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sessions = cls.env["ocore.mcp.session"]
        cls.key, _secret = cls.env["ocore.mcp.key"]._ocore_create_key("session lookup", cls.env.ref("base.user_admin"))

    def _open(self, **vals):
        return self.sessions._ocore_open(
            self.key.id, "stream", "127.0.0.1", instances=["a", "b"], categories=["orm"], protocol_version="2025-11-25",
            client_name="probe", client_version="1.2", client_capabilities=json.dumps({"roots": {}}), **vals)

    def _stored(self, session):
        """The session's fields as a fresh read from the database gives them."""
        session.invalidate_recordset()
        return {name: session._fields[name].convert_to_write(session[name], session)
                for name in [*SESSION_FIELDS, "user_id", "ip_address", "state"]}

    def test_open_fills_the_cache(self):
        session = self._open()
        with self.assertQueryCount(0):
            seen = {name: session._fields[name].convert_to_write(session[name], session)
                    for name in [*SESSION_FIELDS, "user_id", "ip_address", "state"]}
        self.assertEqual(seen, self._stored(session))
        self.assertEqual(seen["user_id"], self.env.ref("base.user_admin").id)
        self.assertEqual(seen["instances_filter"], "a,b")
        self.assertFalse(seen["ended_at"])
        self.assertFalse(seen["log_level"])
        self.assertTrue(seen["last_seen"])

    def test_open_without_waiting_for_the_flush(self):
        session = self._open(wait_for_flush=False)
        self.env.cr.execute("SHOW synchronous_commit")
        self.assertEqual(self.env.cr.fetchone()[0], "off")  # SET LOCAL: for this transaction only
        self.assertEqual(session.session_id, self._stored(session)["session_id"])

    def test_get_is_one_query_and_matches_the_orm(self):
        session = self._open()
        session_id = session.session_id
        self.env.invalidate_all()
        with self.assertQueryCount(1):
            found = self.sessions._ocore_get(session_id)
            seen = {name: found[name] for name in SESSION_FIELDS}
        self.assertEqual(found, session)
        self.assertEqual(seen["session_id"], session_id)
        self.assertEqual({name: found._fields[name].convert_to_write(found[name], found) for name in SESSION_FIELDS},
                         {name: value for name, value in self._stored(found).items() if name in SESSION_FIELDS})
        self.assertFalse(self.sessions._ocore_get("no-such-session"))
        self.assertFalse(self.sessions._ocore_get(None))
        self.assertEqual(found.env.su, True)

    def test_values_rebuild_the_session_without_a_query(self):
        session = self._open()
        values = session._ocore_values()
        self.env.invalidate_all()
        with self.assertQueryCount(0):
            rebuilt = self.sessions._ocore_from_values(session.id, values)
            self.assertEqual(rebuilt.key_id, self.key)
            self.assertEqual(rebuilt._ocore_capabilities(), {"roots": {}})
            self.assertEqual(rebuilt.protocol_version, "2025-11-25")
        self.assertEqual(rebuilt._ocore_values(), values)

    def test_get_sees_this_transaction_s_pending_write(self):
        session = self._open()
        session.write({"log_level": "debug"})  # pending in the ORM: the lookup's plain query must see it
        self.assertEqual(self.sessions._ocore_get(session.session_id).log_level, "debug")

    def test_ended_session_is_seen_ended(self):
        session = self._open()
        session._ocore_end("test")
        found = self.sessions._ocore_get(session.session_id)
        self.assertTrue(found.ended_at)
