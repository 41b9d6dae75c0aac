"""Wall-clock deadlines for tool calls.

The database side of a timeout is PostgreSQL's ``statement_timeout``; this
module covers Python code (a loop in a shell tool, a slow computation). One
watchdog thread per process keeps a heap of deadlines and, when one passes,
raises :class:`CallInterrupted` asynchronously in the thread running the call
(``PyThreadState_SetAsyncExc``). Under gevent, where every greenlet shares one
OS thread, ``gevent.Timeout`` is used instead. Cancellation requests use the
same mechanism.
"""

import contextlib
import ctypes
import heapq
import itertools
import threading
import time


class CallInterrupted(BaseException):  # noqa: N818 - BaseException so that `except Exception` in tool code cannot swallow it
    reason = "interrupted"


class CallTimeout(CallInterrupted):
    reason = "timeout"


class CallCancelled(CallInterrupted):
    reason = "cancelled"


def _gevent_active():
    try:
        from gevent import monkey

        return monkey.is_module_patched("threading")
    except ImportError:
        return False


class _Watchdog:
    def __init__(self):
        self._lock = threading.Lock()
        self._heap = []
        self._wake = threading.Event()
        self._counter = itertools.count()
        self._live = {}
        self._thread = None

    def _ensure_thread(self):
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="ocore-mcp-watchdog", daemon=True)
            self._thread.start()

    def arm(self, when, thread_id, exc_type):
        token = next(self._counter)
        with self._lock:
            self._live[token] = (thread_id, exc_type)
            heapq.heappush(self._heap, (when, token))
            self._ensure_thread()
        self._wake.set()
        return token

    def disarm(self, token):
        with self._lock:
            if self._live.pop(token, None) is None:
                # already fired: drop a pending exception not yet delivered
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(threading.get_ident()), None)

    def fire(self, token, exc_type=None):
        """Interrupt the call now (used for cancellation)."""
        with self._lock:
            entry = self._live.pop(token, None)
            if entry:
                _async_raise(entry[0], exc_type or entry[1])
        return bool(entry)

    def _run(self):
        while True:
            with self._lock:
                now = time.monotonic()
                while self._heap and (self._heap[0][1] not in self._live):
                    heapq.heappop(self._heap)
                while self._heap and self._heap[0][0] <= now:
                    _, token = heapq.heappop(self._heap)
                    entry = self._live.pop(token, None)
                    if entry:
                        _async_raise(*entry)
                timeout = (self._heap[0][0] - now) if self._heap else 5.0
            self._wake.wait(max(0.01, min(timeout, 5.0)))
            self._wake.clear()


def _async_raise(thread_id, exc_type):
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))


_watchdog = _Watchdog()


class Deadline:
    """Context manager: interrupt the enclosed code after ``seconds``."""

    def __init__(self, seconds):
        self.seconds = seconds
        self._token = None
        self._gevent_timeout = None
        self.started = None

    def __enter__(self):
        self.started = time.monotonic()
        if _gevent_active():
            import gevent

            self._gevent_timeout = gevent.Timeout(self.seconds, CallTimeout)
            self._gevent_timeout.start()
        else:
            self._token = _watchdog.arm(self.started + self.seconds, threading.get_ident(), CallTimeout)
        return self

    def cancel_now(self):
        """Interrupt the enclosed code with CallCancelled (from another thread)."""
        if self._gevent_timeout is not None:
            self._gevent_timeout.close()
            return False
        if self._token is not None:
            return _watchdog.fire(self._token, CallCancelled)
        return False

    def remaining(self):
        return max(0.0, self.seconds - (time.monotonic() - self.started))

    @contextlib.contextmanager
    def shield(self, grace=5.0):
        """Suspend the deadline (and cancellation) around a section that must not be interrupted,
        e.g. a module install that commits and reloads the registry. Re-armed after it with what
        is left of the deadline, at least ``grace`` seconds."""
        gevent_timeout, token = self._gevent_timeout, self._token
        if gevent_timeout is not None:
            gevent_timeout.close()
        elif token is not None:
            _watchdog.disarm(token)
            self._token = None
        try:
            yield
        finally:
            seconds = max(self.remaining(), grace)
            if gevent_timeout is not None:
                import gevent

                self._gevent_timeout = gevent.Timeout(seconds, CallTimeout)
                self._gevent_timeout.start()
            elif token is not None:
                self._token = _watchdog.arm(time.monotonic() + seconds, threading.get_ident(), CallTimeout)

    def __exit__(self, *exc):
        if self._gevent_timeout is not None:
            self._gevent_timeout.close()
        if self._token is not None:
            _watchdog.disarm(self._token)
        return False
