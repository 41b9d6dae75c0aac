"""The server log as the ``odoo_logs`` tool reads it.

When Odoo writes to a logfile (``--logfile``), the tool tails that file. Otherwise
(logging to stdout / syslog, the usual container set-up) it reads a bounded
capture the addon keeps itself: a :class:`logging.Handler` on the root logger,
installed when the addon's code is imported, keeping the last
:data:`CAPTURE_SIZE` formatted lines of this process in a ring buffer.

In prefork mode each worker process keeps its own capture (what that worker
logged since it loaded the addon); the logfile has no such limit.
"""

import collections
import logging
import os
import re
import threading
import time

CAPTURE_SIZE = 2000
READ_BLOCK = 64 * 1024
MAX_SCAN_BYTES = 32 * 1024 * 1024  # how far back a filtered tail of a logfile looks


class RingBufferHandler(logging.Handler):
    """Keep the last ``capacity`` log lines in memory, formatted like Odoo's own log."""

    def __init__(self, capacity=CAPTURE_SIZE):
        super().__init__(logging.DEBUG)
        self.lines = collections.deque(maxlen=capacity)
        self.started = time.time()

    def emit(self, record):
        try:
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.created))
            dbname = getattr(threading.current_thread(), "dbname", "?")
            text = record.getMessage()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                text = f"{text}\n{record.exc_text}"
            head = f"{created},{int(record.msecs):03d} {record.process} {record.levelname} {dbname} {record.name}: "
            for i, line in enumerate(text.splitlines() or [""]):
                self.lines.append(head + line if i == 0 else line)
        except Exception:  # noqa: BLE001 - a log handler must never raise
            self.handleError(record)


_lock = threading.Lock()


def capture_handler():
    """The process's capture handler, installed on the root logger on first use."""
    root = logging.getLogger()
    with _lock:
        for handler in root.handlers:
            if isinstance(handler, RingBufferHandler) or type(handler).__name__ == "RingBufferHandler":
                return handler
        handler = RingBufferHandler()
        root.addHandler(handler)
        return handler


def compile_filter(pattern):
    """A grep-like filter: a regular expression (case-sensitive); ValueError when invalid."""
    if not pattern:
        return None
    if len(pattern) > 200:
        raise ValueError("filter: at most 200 characters")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"filter: not a valid regular expression ({exc})") from None


def tail_capture(lines, regex=None):
    """The last ``lines`` captured lines (matching ``regex``), oldest first."""
    handler = capture_handler()
    snapshot = list(handler.lines)
    if regex is not None:
        snapshot = [line for line in snapshot if regex.search(line)]
    return snapshot[-lines:] if lines else [], len(snapshot)


def tail_file(path, lines, regex=None, max_scan=MAX_SCAN_BYTES):
    """The last ``lines`` lines of a text file (matching ``regex``), read backwards in blocks.

    Returns ``(lines, scanned_bytes, reached_start)``.
    """
    found = []
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        pos = fh.tell()
        rest = b""
        scanned = 0
        while pos > 0 and len(found) < lines and scanned < max_scan:
            size = min(READ_BLOCK, pos)
            pos -= size
            fh.seek(pos)
            chunk = fh.read(size) + rest
            scanned += size
            parts = chunk.split(b"\n")
            rest = parts[0] if pos > 0 else b""
            complete = parts[1:] if pos > 0 else parts
            for raw in reversed(complete):
                if not raw.strip():
                    continue
                text = raw.decode("utf-8", errors="replace").rstrip("\r")
                if regex is None or regex.search(text):
                    found.append(text)
                    if len(found) >= lines:
                        break
    found.reverse()
    return found, scanned, pos == 0
