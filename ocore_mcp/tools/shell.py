"""Shell tools: Python code in the Odoo environment of the key's owner.

Offered only to keys whose owner is a system administrator (``admin_only``);
they are write tools, so read-only keys and ``mcp_write_enabled`` off refuse
them. The code runs in the call's savepoint under the call's deadline: when it
raises, the pipeline rolls everything back (``ToolFailed``) and the client
still gets stdout, stderr and the traceback. ``env.cr.commit()`` and
``env.cr.rollback()`` are refused during the call (the call commits on
success). This is a shell, not a sandbox: anything Python can do, the code can.
"""

import builtins
import functools

import psycopg2.extensions

from odoo import _, models
from odoo.exceptions import UserError

from ..lib import pyexec
from ..lib.tooling import mcp_tool
from ..service.policy import Refusal, ToolFailed

MAX_COMMANDS = 50


def _refuse_transaction_control(self, *_args, **_kwargs):
    """Stands in for env.cr.commit()/rollback() while shell code runs (bound to the toolset, whose
    ``self.env`` gives the message its language)."""
    raise UserError(_(
        "env.cr.commit()/rollback() are not available in MCP shell tools: the call's changes are committed "
        "when it succeeds and rolled back when it fails"
    ))


class ShellTools(models.AbstractModel):
    _name = "ocore.mcp.tools.shell"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: shell"

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

    def _shell_run(self, code, namespace, mode):
        """Run one piece of code; return its output dict (stdout, stderr, exit_code[, result])."""
        if not isinstance(code, str) or not code.strip():
            raise Refusal("invalid_input", "code is empty")
        if "\x00" in code:
            raise Refusal("invalid_input", "code contains a NUL byte")
        cr = self.env.cr
        saved = {name: vars(cr)[name] for name in ("commit", "rollback") if name in vars(cr)}
        refuse = functools.partial(_refuse_transaction_control, self)
        for name in ("commit", "rollback"):
            setattr(cr, name, refuse)
        try:
            with pyexec.capture() as out:
                outcome = pyexec.run(code, namespace, mode)
            if outcome["exit_code"] == 0:
                try:
                    self.env.flush_all()  # a pending write fails now, with the code's output
                except Exception as exc:  # noqa: BLE001 - reported like an exception of the code
                    error = f"{type(exc).__name__} while saving the changes: {exc}"
                    out["stderr"].write(error + "\n")
                    outcome.update(exit_code=1, error=error[:2000])
        finally:
            for name in ("commit", "rollback"):
                if name in saved:
                    setattr(cr, name, saved[name])
                else:
                    vars(cr).pop(name, None)
        result = {"stdout": out["stdout"].getvalue(), "stderr": out["stderr"].getvalue(),
                  "exit_code": outcome["exit_code"]}
        if outcome["result"] is not None:
            result["result"] = outcome["result"]
        if outcome["error"]:
            result["error"] = outcome["error"]
        status = cr.connection.get_transaction_status()
        if status == psycopg2.extensions.TRANSACTION_STATUS_INERROR and result["exit_code"] == 0:
            result.update(exit_code=1, error="the code left the database transaction in an error state "
                          "(a failed query whose exception was caught)")
        return result

    def _shell_fail(self, result, what="the code"):
        raise ToolFailed(
            f"error: {what} failed with exit code {result['exit_code']}"
            f"{': ' + result['error'] if result.get('error') else ''}; everything it did was rolled back.",
            result,
        )

    @mcp_tool("shell", kind="write", admin_only=True, model_args=())
    def _tool_execute_shell(self, code: str) -> dict:
        """Run Python in the Odoo shell (admins only) with env, self (env.user), odoo, fields, models, api,
        Command. Returns {stdout, stderr, exit_code, result}; an exception rolls everything back.

        Args:
            code: Python source.
        """
        result = self._shell_run(code, self._shell_namespace(), "shell")
        if result["exit_code"]:
            self._shell_fail(result)
        return result

    @mcp_tool("shell", kind="write", admin_only=True, model_args=())
    def _tool_execute_shell_multi(self, commands: list[str]) -> dict:
        """Run several Python commands in one session (admins only); variables persist across them. Stops at the
        first failure and rolls everything back.

        Args:
            commands: Python sources, run in order.
        """
        if not commands:
            raise Refusal("invalid_input", "commands is empty")
        if len(commands) > MAX_COMMANDS:
            raise Refusal("invalid_input", f"at most {MAX_COMMANDS} commands per call")
        namespace = self._shell_namespace()
        results = []
        for index, code in enumerate(commands, 1):
            result = dict(index=index, **self._shell_run(code, namespace, "shell"))
            results.append(result)
            if result["exit_code"]:
                self._shell_fail(
                    {"commands": results, "failed_command": index, "exit_code": result["exit_code"],
                     "error": result.get("error")},
                    what=f"command {index} of {len(commands)}",
                )
        return {"commands": results, "exit_code": 0}

    @mcp_tool("shell", kind="write", admin_only=True, model_args=())
    def _tool_python_repl(self, code: str) -> dict:
        """Stateless Python REPL (admins only): each call starts fresh (env, self, odoo ...); expression values are
        echoed.

        Args:
            code: Python source with all imports.
        """
        result = self._shell_run(code, self._shell_namespace(), "repl")
        if result["exit_code"]:
            self._shell_fail(result)
        return result
