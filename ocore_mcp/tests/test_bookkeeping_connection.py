"""The bookkeeping connections of a process (service/bookkeeping.py): the call's rate-limit hit and 'running'
audit row run there, each statement committed on its own, on a connection kept from one call to the next (its
plans stay cached) and replaced when its backend is gone."""

import threading
import time

from odoo.tests import TransactionCase, tagged

from ..service import bookkeeping


@tagged("post_install", "-at_install")
class TestBookkeepingConnection(TransactionCase):
    def _backend(self):
        with bookkeeping.borrowed(self.env.cr.dbname) as cr:
            cr.execute("SELECT pg_backend_pid(), current_setting('transaction_isolation'), "
                       "now() = statement_timestamp()")
            return cr.fetchone()

    def test_kept_and_each_statement_committed(self):
        pid, isolation, own_transaction = self._backend()
        # READ COMMITTED (the rate-limit function sees every hit committed before its lock was granted), and
        # a transaction per statement: committed before the tool's transaction starts
        self.assertEqual(isolation, "read committed")
        self.assertTrue(own_transaction)
        self.assertEqual(self._backend()[0], pid, "the connection was not kept for the next call")
        self.assertNotEqual(pid, self.env.cr._cnx.get_backend_pid())

    def test_a_dead_connection_is_replaced(self):
        pid = self._backend()[0]
        self.env.cr.execute("SELECT pg_terminate_backend(%s)", (pid,))
        self.assertTrue(self.env.cr.fetchone()[0])
        time.sleep(0.5)  # the backend ends and closes its socket
        new_pid = self._backend()[0]  # not an error: the dead idle connection was noticed and replaced
        self.assertNotEqual(new_pid, pid)

    def test_connection_lost_during_the_statement(self):
        with self.assertRaises(bookkeeping.ConnectionLost):
            with bookkeeping.borrowed(self.env.cr.dbname) as cr:
                cr.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        self.assertTrue(self._backend()[0], "the next statement gets a working connection")

    def test_a_burst_opens_at_most_max_open_connections(self):
        """Forty calls at once: at most MAX_OPEN bookkeeping connections of the process are in use together (the
        others wait for one), never one per call beside Odoo's pool."""
        dbname, lock, state = self.env.cr.dbname, threading.Lock(), {"now": 0, "max": 0}

        def call():
            with bookkeeping.borrowed(dbname) as cr:
                with lock:
                    state["now"] += 1
                    state["max"] = max(state["max"], state["now"])
                cr.execute("SELECT pg_sleep(0.05)")
                with lock:
                    state["now"] -= 1

        threads = [threading.Thread(target=call) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(state["now"], 0)
        self.assertLessEqual(state["max"], bookkeeping.MAX_OPEN)
        self.assertGreater(state["max"], 1, "the calls ran one after the other: the test proves nothing")
