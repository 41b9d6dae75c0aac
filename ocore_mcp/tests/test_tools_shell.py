"""The shell tools (execute_shell, execute_shell_multi, python_repl) through the real pipeline, and the
per-context output capture of lib/pyexec.py."""

import sys
import threading
import time
import uuid

from odoo.tests import BaseCase, tagged
from odoo.tools import mute_logger

from ..lib import compat
from ..lib import pyexec, shellguard
from .test_tools_sql import McpSqlCase


@tagged("post_install", "-at_install", "ocore_shell")
class TestShellTools(McpSqlCase):
    def shell(self, code, tool="execute_shell", **kw):
        return self.ok(tool, dict(code=code, **kw))

    def partner_named(self, name):
        return self.env["res.partner"].search([("name", "=", name)])

    def test_execute_shell_bindings_output_and_result(self):
        data = self.shell("print('hello', env.user.login)\nimport sys\nprint('warn', file=sys.stderr)\n"
                          "partner = env['res.partner'].create({'name': 'Shell Made'})\n"
                          "(self.login, type(self).__name__, fields.Char.__name__, models.Model.__name__, "
                          "api.model.__name__, int(Command.create({})[0]), odoo.release.version)")
        self.assertEqual(data["stdout"], "hello admin\n")
        self.assertEqual(data["stderr"], "warn\n")
        self.assertEqual(data["exit_code"], 0)
        from odoo import release

        self.assertEqual(data["result"], repr(("admin", "res.users", "Char", "Model", "model", 0, release.version)))
        self.assertEqual(len(self.partner_named("Shell Made")), 1)  # committed with the call (savepoint released)

    def test_env_is_the_key_owner(self):
        other = self.env["res.users"].with_context(no_reset_password=True).create({
            "name": "shell admin 2", "login": "ocore_shell_admin2",
            compat.user_groups_field(self.env["res.users"]): [(6, 0, [self.env.ref("base.group_system").id, self.env.ref("ocore_mcp.group_mcp_user").id])],
        })
        key = self.keys._ocore_create_key("second admin", other)[0]
        data = self.ok("execute_shell", {"code": "env.uid, self.id, env.su"}, key=key)
        self.assertEqual(data["result"], repr((other.id, other.id, False)))

    def test_exception_rolls_back_and_shows_output(self):
        result = self.fails("execute_shell", {"code": (
            "env['res.partner'].create({'name': 'Shell Rolled Back'})\n"
            "print('before the error')\n"
            "1 / 0\n")}, "error: the code failed with exit code 1: ZeroDivisionError: division by zero")
        data = result["structuredContent"]
        self.assertEqual((data["exit_code"], data["stdout"]), (1, "before the error\n"))
        self.assertIn("Traceback (most recent call last)", data["stderr"])
        self.assertIn('line 3, in <module>', data["stderr"])
        self.assertIn("1 / 0", data["stderr"])
        self.assertNotIn("pyexec.py", data["stderr"])
        self.assertIn("before the error", result["content"][0]["text"])
        self.assertFalse(self.partner_named("Shell Rolled Back"))
        self.assertEqual(self.last_audit("execute_shell")[0], "error")

    def test_failing_flush_is_a_failure_of_the_code(self):
        with mute_logger("odoo.sql_db"):  # the failing UPDATE of the flush is logged by the cursor
            result = self.fails("execute_shell", {"code": (
                "print('made')\np = env['res.partner'].create({'name': 'Flush Lost'})\nenv.flush_all()\n"
                "p.name = False  # violates res_partner_check_name when flushed")}, "while saving the changes")
        self.assertIn("check_name", result["structuredContent"]["stderr"])
        self.assertEqual(result["structuredContent"]["stdout"], "made\n")
        self.assertFalse(self.partner_named("Flush Lost"))

    def test_syntax_error(self):
        result = self.fails("execute_shell", {"code": "def broken(:\n  pass"}, "SyntaxError")
        self.assertIn("SyntaxError", result["structuredContent"]["stderr"])

    def test_commit_is_refused(self):
        before = {name: vars(self.env.cr).get(name) for name in ("commit", "rollback", "close")}
        result = self.fails("execute_shell", {"code": (
            "env['res.partner'].create({'name': 'Shell Commit'})\nenv.cr.commit()")}, "exit code 1")
        self.assertIn("env.cr.commit() is not available in MCP shell tools", result["structuredContent"]["stderr"])
        self.assertFalse(self.partner_named("Shell Commit"))
        # the cursor is restored after the call
        self.assertEqual({name: vars(self.env.cr).get(name) for name in before}, before)

    # every door to a committed write of a failed call: the cursor, its connection, raw statements, new cursors
    COMMIT_ROUTES = [
        ("env.cr.commit()", "env.cr.commit() is not available"),
        ("env.cr.rollback()", "env.cr.rollback() is not available"),
        ("env.cr.close()", "env.cr.close() is not available"),
        ("env.cr._cnx.commit()", "connection.commit() is not available"),
        ("env.cr._cnx.rollback()", "connection.rollback() is not available"),
        ("env.cr._cnx.close()", "connection.close() is not available"),
        ("env.cr._cnx.reset()", "connection.reset() is not available"),
        ("env.cr.connection.commit()", "connection.commit() is not available"),
        ("env.cr.connection.rollback()", "connection.rollback() is not available"),
        ("env.cr._obj.connection.commit()", "connection.commit() is not available"),
        ("env.cr._cnx.set_isolation_level(0)", "connection.set_isolation_level() is not available"),
        ("env.cr._cnx.set_session(autocommit=True)", "connection.set_session() is not available"),
        ("env.cr._cnx.tpc_begin(env.cr._cnx.xid(1, 'a', 'b'))", "connection.tpc_begin() is not available"),
        ("env.cr._cnx.autocommit = True", "set_session cannot be used inside a transaction"),
        ("env.cr.execute('COMMIT')", "COMMIT/ROLLBACK is not available"),
        ("env.cr.execute('commit')", "COMMIT/ROLLBACK is not available"),
        ("env.cr.execute('/* x */ COMMIT WORK')", "COMMIT/ROLLBACK is not available"),
        ("env.cr.execute('SELECT 1; COMMIT')", "COMMIT/ROLLBACK is not available"),
        ("env.cr.execute('END')", "COMMIT/ROLLBACK is not available"),
        ("env.cr.execute('ROLLBACK')", "COMMIT/ROLLBACK is not available"),
        ("env.cr.execute('ABORT')", "COMMIT/ROLLBACK is not available"),
        ("env.cr.execute(\"PREPARE TRANSACTION 'ocore'\")", "COMMIT/ROLLBACK is not available"),
        ("env.cr.execute(tools.SQL('COMMIT'))", "COMMIT/ROLLBACK is not available"),
        ("env.cr.execute('COMMIT -- %s', ['x'])", "COMMIT/ROLLBACK is not available"),
        ("env.cr._obj.execute('COMMIT')", "COMMIT/ROLLBACK is not available"),
        ("env.cr._obj.executemany('COMMIT', [()])", "COMMIT/ROLLBACK is not available"),
        ("env.cr._cnx.cursor().execute('COMMIT')", "COMMIT/ROLLBACK is not available"),
        ("env.cr.connection.cursor().execute('ROLLBACK')", "COMMIT/ROLLBACK is not available"),
        ("import psycopg2.extras\nenv.cr._cnx.cursor(cursor_factory=psycopg2.extras.DictCursor).execute('END')",
         "COMMIT/ROLLBACK is not available"),
        ("import psycopg2.extras\npsycopg2.extras.execute_batch(env.cr._obj, 'COMMIT', [()])",
         "COMMIT/ROLLBACK is not available"),
        ("env.registry.cursor()", "a new database cursor"),
        ("with env.registry.cursor() as cr2:\n    cr2.execute('SELECT 1')", "a new database cursor"),
        ("odoo.sql_db.db_connect(env.cr.dbname).cursor()", "a new database cursor"),
        ("import odoo.modules.registry\nodoo.modules.registry.Registry(env.cr.dbname).cursor()",
         "a new database cursor"),
        ("import psycopg2\npsycopg2.connect(env.cr._cnx.dsn)", "a new database connection"),
        ("import psycopg2\npsycopg2._connect(env.cr._cnx.dsn)", "a new database connection"),
        ("from psycopg2 import _psycopg\n_psycopg._connect(env.cr._cnx.dsn)", "a new database connection"),
        # the fence: a deferred constraint trigger fails any COMMIT while the code runs (here made immediate)
        ("env.cr.execute('SET CONSTRAINTS ALL IMMEDIATE')", "the code cannot commit it"),
    ]

    def test_no_route_commits_a_failed_call(self):
        cr = self.env.cr
        before = {name: vars(cr).get(name) for name in ("commit", "rollback", "close")}
        for index, (route, expected) in enumerate(self.COMMIT_ROUTES):
            name = f"Shell Route {index} {uuid.uuid4().hex}"
            with self.subTest(route=route), mute_logger("odoo.sql_db"):
                code = f"env['res.partner'].create({{'name': {name!r}}})\nenv.flush_all()\n{route}\n"
                result = self.fails("execute_shell", {"code": code}, "exit code 1")
                self.assertIn(expected, result["structuredContent"]["stderr"])
                self.assertFalse(self.partner_named(name))
                self.assertEqual(self.last_audit("execute_shell"), ("error", None))
        # everything is back in place after the calls
        self.assertEqual({name: vars(cr).get(name) for name in before}, before)
        self.assertFalse({"commit", "rollback", "cursor", "close", "set_session"} & set(vars(cr._cnx)))
        self.assertIs(type(cr._obj), shellguard.psycopg2.extensions.cursor)
        with self.registry.cursor() as other:
            other.execute("SELECT 1")
            self.assertEqual(other.fetchone(), (1,))

    def test_guards_leave_ordinary_database_work_alone(self):
        data = self.shell(
            "import psycopg2.extras\n"
            "with env.cr.savepoint():\n    env['res.partner'].create({'name': 'Shell Savepoint'})\n"
            "try:\n    with env.cr.savepoint():\n        env['res.partner'].create({'name': 'Shell Undone'})\n"
            "        raise ValueError('undo')\nexcept ValueError:\n    pass\n"
            "env.cr.execute(\"SELECT CASE WHEN true THEN 'end' END, 'commit', 'rollback'\")\n"
            "row = env.cr.fetchone()\n"
            "values = psycopg2.extras.execute_values(env.cr._obj, 'SELECT * FROM (VALUES %s) v', [(1,), (2,)], "
            "fetch=True)\n"
            "env.cr.execute('SAVEPOINT mine; RELEASE SAVEPOINT mine')\n"
            "(row, values)")
        self.assertEqual(data["result"], repr((("end", "commit", "rollback"), [(1,), (2,)])))
        self.assertTrue(self.partner_named("Shell Savepoint"))
        self.assertFalse(self.partner_named("Shell Undone"))
        # the fence row of the call is gone once the call succeeded: the transaction may be committed
        self.env.cr.execute(f"SELECT count(*) FROM {shellguard.FENCE_TABLE}")  # noqa: S608 - a constant
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        multi = self.ok("execute_shell_multi", {"commands": ["x = 2", "env.cr.execute('SELECT %s', [x])",
                                                             "env.cr.fetchone()[0]"]})
        self.assertEqual(multi["commands"][-1]["result"], "2")

    def test_system_exit(self):
        data = self.shell("print('bye')\nraise SystemExit(0)")
        self.assertEqual((data["exit_code"], data["stdout"]), (0, "bye\n"))
        result = self.fails("execute_shell", {"code": "import sys\nenv['res.partner'].create({'name': 'Exit 3'})\n"
                                                      "sys.exit(3)"}, "exit code 3")
        self.assertEqual(result["structuredContent"]["exit_code"], 3)
        self.assertFalse(self.partner_named("Exit 3"))

    def test_caught_database_error_still_rolls_back(self):
        result = self.fails("execute_shell", {"code": (
            "env['res.partner'].create({'name': 'Shell Aborted'}); env.flush_all()\n"
            "try:\n    env.cr.execute('SELECT 1/0', log_exceptions=False)\nexcept Exception as e:\n    print('caught', type(e).__name__)\n"
        )}, "error state")
        self.assertEqual(result["structuredContent"]["stdout"], "caught DivisionByZero\n")
        self.assertFalse(self.partner_named("Shell Aborted"))
        self.shell("1")  # the transaction is usable again

    def test_timeout_interrupts_python_loops(self):
        started = time.monotonic()
        result = self.fails("execute_shell", {"code": "while True:\n    pass", "timeout_seconds": 1}, "timeout")
        self.assertLess(time.monotonic() - started, 10)
        self.assertIn("exceeded timeout_seconds=1", result["content"][0]["text"])
        self.assertEqual(self.last_audit("execute_shell"), ("error", "timeout"))
        # user code catching Exception cannot swallow the interruption
        self.fails("python_repl", {"code": "while True:\n    try:\n        pass\n    except Exception:\n        pass",
                                   "timeout_seconds": 1}, "timeout")

    def test_dry_run(self):
        data = self.ok("execute_shell", {"code": "env['res.partner'].create({'name': 'Shell Dry'}).name",
                                         "dry_run": True})
        self.assertEqual(data["would_return"]["result"], "'Shell Dry'")
        self.assertFalse(self.partner_named("Shell Dry"))

    def test_execute_shell_multi_persists_variables(self):
        data = self.ok("execute_shell_multi", {"commands": [
            "import json\nx = 20",
            "y = x * 2\nprint(json.dumps({'y': y}))",
            "p = env['res.partner'].create({'name': 'Multi %d' % y})",
            "p.name",
        ]})
        self.assertEqual([c["exit_code"] for c in data["commands"]], [0, 0, 0, 0])
        self.assertEqual(data["commands"][1]["stdout"], '{"y": 40}\n')
        self.assertEqual(data["commands"][3]["result"], "'Multi 40'")
        self.assertEqual(len(self.partner_named("Multi 40")), 1)

    def test_execute_shell_multi_stops_at_first_failure(self):
        result = self.fails("execute_shell_multi", {"commands": [
            "env['res.partner'].create({'name': 'Multi Lost'})\nprint('one')",
            "raise ValueError('boom')",
            "print('never')",
        ]}, "command 2 of 3 failed with exit code 1: ValueError: boom")
        data = result["structuredContent"]
        self.assertEqual(data["failed_command"], 2)
        self.assertEqual([c["index"] for c in data["commands"]], [1, 2])
        self.assertEqual(data["commands"][0]["stdout"], "one\n")
        self.assertIn("ValueError: boom", data["commands"][1]["stderr"])
        self.assertFalse(self.partner_named("Multi Lost"))
        self.fails("execute_shell_multi", {"commands": []}, "commands is empty")

    def test_python_repl_echo_and_stateless(self):
        data = self.shell("a = 2\na + 3\nNone\nprint('p')\n[a] * 2", tool="python_repl")
        self.assertEqual(data["stdout"], "5\np\n[2, 2]\n")
        self.assertNotIn("result", data)
        result = self.fails("python_repl", {"code": "a"}, "NameError")
        self.assertIn("name 'a' is not defined", result["structuredContent"]["stderr"])
        data = self.shell("env.user.login", tool="python_repl")
        self.assertEqual(data["stdout"], "'admin'\n")

    def test_policy(self):
        ro_key = self.keys._ocore_create_key("ro shell", self.admin, read_only=True)[0]
        for tool, args in (("execute_shell", {"code": "1"}), ("python_repl", {"code": "1"}),
                           ("execute_shell_multi", {"commands": ["1"]})):
            with self.subTest(tool=tool):
                self.fails(tool, args, "write operations blocked", key=ro_key)
                self.fails(tool, args, "mcp_write_enabled off", write_enabled=False)
                self.fails(tool, args, "only offered to system administrators", key=self.non_admin_key_cached())
        self.fails("execute_shell", {"code": "  "}, "code is empty")

    def non_admin_key_cached(self):
        if not hasattr(self, "_non_admin"):
            self._non_admin = self.non_admin_key()
        return self._non_admin


@tagged("post_install", "-at_install", "ocore_shell")
class TestPyexecCapture(BaseCase):
    def test_concurrent_captures_do_not_mix(self):
        outputs, errors = {}, []
        barrier = threading.Barrier(4)

        def worker(n):
            try:
                with pyexec.capture() as out:
                    barrier.wait()
                    for i in range(200):
                        print(f"t{n}-{i}")  # pylint: disable=print-used  # the test is about capturing print()
                        if i % 50 == 0:
                            time.sleep(0.001)
                outputs[n] = out["stdout"].getvalue()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for n in range(4):
            self.assertEqual(outputs[n], "".join(f"t{n}-{i}\n" for i in range(200)))

    def test_outside_a_capture_writes_reach_the_real_stream(self):
        pyexec.install()
        self.assertIsInstance(sys.stdout, pyexec._ContextStream)
        self.assertIs(sys.stdout._target(), sys.stdout._original)
        with pyexec.capture() as out:
            print("captured")  # pylint: disable=print-used  # the test is about capturing print()
        self.assertEqual(out["stdout"].getvalue(), "captured\n")

    def test_output_cap(self):
        buffer = pyexec.CappedBuffer(limit=10)
        buffer.write("0123456789abc")
        buffer.write("def")
        self.assertEqual(buffer.getvalue(), "0123456789\n[output truncated: 6 more characters]")

    def test_run_modes(self):
        ns = {}
        with pyexec.capture() as out:
            self.assertEqual(pyexec.run("x = 1\nx + 1", ns)["result"], "2")
            self.assertEqual(pyexec.run("x\nx + 1", ns, mode="repl")["result"], None)
        self.assertEqual(out["stdout"].getvalue(), "1\n2\n")
        with pyexec.capture():
            outcome = pyexec.run("raise SystemExit('message')", {})
        self.assertEqual((outcome["exit_code"], outcome["error"]), (1, "SystemExit: 1"))
