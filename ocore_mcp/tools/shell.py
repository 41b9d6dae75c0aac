"""Shell tools: Python code in the Odoo environment of the key's owner.

Offered only to keys whose owner is a system administrator (``admin_only``);
they are write tools, so read-only keys and ``mcp_write_enabled`` off refuse
them. The code runs in the call's savepoint under the call's deadline: when it
raises, the pipeline rolls everything back (``ToolFailed``) and the client
still gets stdout, stderr and the traceback. The code cannot end the call's
transaction nor open another one (lib/shellguard.py: ``env.cr.commit()``,
``env.cr._cnx.commit()``, ``env.cr.execute("COMMIT")``, ``env.registry.cursor()``
... are refused, and a fence row makes any COMMIT of the transaction fail while
the code runs). This is a shell, not a sandbox: anything Python can do, the code can.
"""

import builtins
import contextlib
import logging

import psycopg2.extensions

from odoo import models
from odoo.exceptions import UserError

from ..lib import pyexec, shellguard
from ..lib.tooling import mcp_tool
from ..service.policy import Refusal, ToolFailed

MAX_COMMANDS = 50

_logger = logging.getLogger(__name__)


class ShellTools(models.AbstractModel):
    _name = "ocore.mcp.tools.shell"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: shell"

    def init(self):
        """The fence table of the shell calls (see lib/shellguard.py), at install and upgrade."""
        shellguard.ensure_fence(self.env.cr)

    def _shell_namespace(self):
        """Bindings of every shell tool: like ``odoo-bin shell`` (env, self = env.user, odoo) plus the usual
        imports."""
        import odoo
        from odoo import Command, _, api, fields, tools
        from odoo import models as odoo_models
        from odoo.exceptions import AccessError, ValidationError

        env = self.env
        return {
            "__name__": "__mcp_shell__",
            "__builtins__": builtins,
            "env": env,
            "self": env.user,
            "odoo": odoo,
            "api": api,
            "fields": fields,
            "models": odoo_models,
            "tools": tools,
            "Command": Command,
            "_": _,
            "UserError": UserError,
            "ValidationError": ValidationError,
            "AccessError": AccessError,
        }

    @contextlib.contextmanager
    def _shell_guarded(self):
        """The guards of lib/shellguard.py around a whole tool call (all commands of execute_shell_multi: a
        cursor's results stay there from one command to the next); yield the fence row's id, deleted when
        the block ends without an exception."""
        cr = self.env.cr
        fence = shellguard.set_fence(cr)
        with shellguard.guard(cr):
            yield fence
        shellguard.release_fence(cr, fence)

    def _shell_run(self, code, namespace, mode, fence):
        """Run one piece of code (inside :meth:`_shell_guarded`); return its output dict (stdout, stderr,
        exit_code[, result])."""
        if not isinstance(code, str) or not code.strip():
            raise Refusal("invalid_input", "code is empty")
        if "\x00" in code:
            raise Refusal("invalid_input", "code contains a NUL byte")
        cr = self.env.cr
        with pyexec.capture() as out:
            outcome = pyexec.run(code, namespace, mode)
        if outcome["exit_code"] == 0:
            try:
                self.env.flush_all()  # a pending write fails now, with the code's output
            except Exception as exc:  # noqa: BLE001 - reported like an exception of the code
                error = f"{type(exc).__name__} while saving the changes: {exc}"
                out["stderr"].write(error + "\n")
                outcome.update(exit_code=1, error=error[:2000])
        result = {"stdout": out["stdout"].getvalue(), "stderr": out["stderr"].getvalue(),
                  "exit_code": outcome["exit_code"]}
        if outcome["result"] is not None:
            result["result"] = outcome["result"]
        if outcome["error"]:
            result["error"] = outcome["error"]
        status = cr._cnx.get_transaction_status()
        if status == psycopg2.extensions.TRANSACTION_STATUS_INERROR:
            if result["exit_code"] == 0:
                result.update(exit_code=1, error="the code left the database transaction in an error state "
                              "(a failed query whose exception was caught)")
        elif status != psycopg2.extensions.TRANSACTION_STATUS_INTRANS or not shellguard.fence_intact(cr, fence):
            self._shell_transaction_lost(result)
        return result

    def _shell_transaction_lost(self, result):
        """The code ended the call's transaction around the guards (a COMMIT refused by the fence, a ROLLBACK
        through a raw connection object). What it wrote since is in no savepoint of the call: the connection
        is closed, which rolls it back, and the pipeline completes the audit row through a new one."""
        _logger.warning("MCP shell code ended the call's database transaction around the guards; closing the "
                        "connection to roll back what it wrote since")
        psycopg2.extensions.connection.close(self.env.cr._cnx)  # its close() is refused while the guards hold
        result.update(exit_code=1, error="the code ended the call's database transaction (COMMIT or ROLLBACK "
                      "through the connection); the connection was closed to roll back what it wrote since")
        self._shell_fail(result)

    def _shell_fail(self, result, what="the code"):
        raise ToolFailed(
            f"error: {what} failed with exit code {result['exit_code']}"
            f"{': ' + result['error'] if result.get('error') else ''}; everything it did was rolled back.",
            result,
        )

    @mcp_tool("shell", kind="write", admin_only=True, model_args=(), title="Run Python")
    def _tool_execute_shell(self, code: str) -> dict:
        """Run Python with env, self (the user), odoo, fields, models, api, Command: stdout, stderr, result. An
        exception rolls back.
        """
        with self._shell_guarded() as fence:
            result = self._shell_run(code, self._shell_namespace(), "shell", fence)
            if result["exit_code"]:
                self._shell_fail(result)
        return result

    @mcp_tool("shell", kind="write", admin_only=True, model_args=(), title="Run Python steps")
    def _tool_execute_shell_multi(self, commands: list[str]) -> dict:
        """Run Python steps sharing variables; the first failure rolls all back.

        Args:
            commands: Run in order.
        """
        if not commands:
            raise Refusal("invalid_input", "commands is empty")
        if len(commands) > MAX_COMMANDS:
            raise Refusal("invalid_input", f"at most {MAX_COMMANDS} commands per call")
        namespace = self._shell_namespace()
        results = []
        with self._shell_guarded() as fence:
            for index, code in enumerate(commands, 1):
                result = dict(index=index, **self._shell_run(code, namespace, "shell", fence))
                results.append(result)
                if result["exit_code"]:
                    self._shell_fail(
                        {"commands": results, "failed_command": index, "exit_code": result["exit_code"],
                         "error": result.get("error")},
                        what=f"command {index} of {len(commands)}",
                    )
        return {"commands": results, "exit_code": 0}

    @mcp_tool("shell", kind="write", admin_only=True, model_args=(), title="Python REPL")
    def _tool_python_repl(self, code: str) -> dict:
        """Run Python afresh (env, self, odoo …); expression values are echoed.

        Args:
            code: Python, with its imports.
        """
        with self._shell_guarded() as fence:
            result = self._shell_run(code, self._shell_namespace(), "repl", fence)
            if result["exit_code"]:
                self._shell_fail(result)
        return result
