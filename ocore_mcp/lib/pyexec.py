"""Run Python source like a shell or a REPL, with per-call stdout/stderr capture.

``contextlib.redirect_stdout`` swaps the process-wide ``sys.stdout``: two calls
running at once in a threaded server would write into each other's output.
Instead, :func:`install` replaces ``sys.stdout`` / ``sys.stderr`` once by a
proxy that writes to the buffers of the *current context* (a ``ContextVar``:
one per thread, one per greenlet under gevent) and to the original stream
everywhere else. Log handlers keep the stream they were created with, so
server logs never end up in a call's output.

Pure Python, no Odoo import.
"""

import ast
import contextlib
import contextvars
import itertools
import linecache
import sys
import threading
import traceback

MAX_OUTPUT = 1_000_000  # characters kept per stream
MAX_REPR = 20_000

_buffers = contextvars.ContextVar("ocore_mcp_pyexec_buffers", default=None)
_install_lock = threading.Lock()
_counter = itertools.count(1)


class CappedBuffer:
    """A text buffer that keeps the first ``limit`` characters and counts the rest."""

    def __init__(self, limit=MAX_OUTPUT):
        self.limit = limit
        self.parts = []
        self.size = 0
        self.dropped = 0

    def write(self, text):  # pylint: disable=method-required-super  # a file-like write(), not an Odoo model
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.limit - self.size
        if room > 0:
            kept = text[:room]
            self.parts.append(kept)
            self.size += len(kept)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def getvalue(self):
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[output truncated: {self.dropped} more characters]"
        return text


class _ContextStream:
    """``sys.stdout`` / ``sys.stderr`` replacement routing writes per context."""

    def __init__(self, name, original):
        self._name = name
        self._original = original

    def _target(self):
        buffers = _buffers.get()
        return buffers[self._name] if buffers is not None else self._original

    def write(self, text):  # pylint: disable=method-required-super  # a file-like write(), not an Odoo model
        return self._target().write(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        target = self._target()
        if hasattr(target, "flush"):
            target.flush()

    def isatty(self):
        return False if _buffers.get() is not None else self._original.isatty()

    def __getattr__(self, name):  # encoding, fileno, buffer ... of the real stream
        return getattr(self._original, name)


def install():
    """Install the per-context proxies on sys.stdout and sys.stderr (idempotent)."""
    with _install_lock:
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if not isinstance(current, _ContextStream):
                setattr(sys, name, _ContextStream(name, current))


@contextlib.contextmanager
def capture(limit=MAX_OUTPUT):
    """Capture what this context prints; yields {"stdout": CappedBuffer, "stderr": CappedBuffer}."""
    install()
    buffers = {"stdout": CappedBuffer(limit), "stderr": CappedBuffer(limit)}
    token = _buffers.set(buffers)
    try:
        yield buffers
    finally:
        _buffers.reset(token)


def _short_repr(value):
    text = repr(value)
    return text if len(text) <= MAX_REPR else text[:MAX_REPR] + f"... [{len(text) - MAX_REPR} more characters]"


def _format_exception(exc, filename):
    """Traceback limited to the frames of the user's code."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def run(source, namespace, mode="shell"):
    """Execute ``source`` in ``namespace``; print()s go to the caller's captured streams.

    ``mode="shell"``: the value of a final expression statement is returned as ``result`` (repr).
    ``mode="repl"``: every top-level expression statement's value is echoed to stdout, like the
    interactive interpreter. Return {"exit_code", "result", "error"}: exit_code 0 on success, 1 on an
    exception (its traceback is written to stderr), SystemExit's code for ``exit()``. BaseExceptions
    other than SystemExit (deadline interruptions) propagate.
    """
    filename = f"<mcp-shell-{next(_counter)}>"
    outcome = {"exit_code": 0, "result": None, "error": None}
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        try:
            tree = ast.parse(source, filename, "exec")
        except SyntaxError as exc:
            sys.stderr.write("".join(traceback.format_exception_only(type(exc), exc)))
            outcome.update(exit_code=1, error=f"SyntaxError: {exc.msg} (line {exc.lineno})")
            return outcome
        try:
            if mode == "repl":
                for node in tree.body:
                    if isinstance(node, ast.Expr):
                        code = compile(ast.Expression(node.value), filename, "eval")
                        value = eval(code, namespace)  # noqa: S307 - the shell tool runs the caller's code by design
                        if value is not None:
                            sys.stdout.write(_short_repr(value) + "\n")
                    else:
                        exec(compile(ast.Module([node], []), filename, "exec"), namespace)  # noqa: S102 - running the caller's code is the tool
            else:
                last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
                body = tree.body[:-1] if last is not None else tree.body
                exec(compile(ast.Module(body, []), filename, "exec"), namespace)  # noqa: S102 - running the caller's code is the tool
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)  # noqa: S307
                    if value is not None:
                        outcome["result"] = _short_repr(value)
        except SystemExit as exc:
            code = exc.code
            if code is None:
                code = 0
            elif not isinstance(code, int):
                sys.stderr.write(f"{code}\n")
                code = 1
            outcome["exit_code"] = code
            if code:
                outcome["error"] = f"SystemExit: {code}"
        except Exception as exc:  # noqa: BLE001 - the user's exception is the call's output
            sys.stderr.write(_format_exception(exc, filename))
            outcome.update(exit_code=1, error=f"{type(exc).__name__}: {exc}"[:2000])
        return outcome
    finally:
        linecache.cache.pop(filename, None)
