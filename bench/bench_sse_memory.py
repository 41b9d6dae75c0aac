"""Memory of idle legacy SSE sessions on the gevent worker of a prefork server.

Starts a real Odoo server in prefork mode (2 HTTP workers + the gevent port) on a fresh database, warms the
gevent worker up (a few SSE sessions opened, used once and closed, so that the registry, the listener and
the code paths are loaded), reads its resident memory (idle worker), then opens ``--sessions`` legacy SSE
sessions on the gevent port (each stream read until its ``endpoint`` event, then left idle), waits for the
memory to settle and reads it again. Target: 200 idle sessions <= 50 MB above the idle worker.

Run with the test virtualenv:  .venv-test/bin/python bench/bench_sse_memory.py [--sessions 200]
"""

import argparse
import http.client
import os
import time
from pathlib import Path

from benchlib import bench_server

SSE_PATH = "/ocore/mcp/sse"


def children(pid):
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: the command name may hold spaces, the ppid follows its ")"
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def gevent_worker(server_pid):
    """The pid of the server's gevent worker (the child started with the ``gevent`` subcommand)."""
    for pid in children(server_pid):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"gevent" in argv:
            return pid
    raise SystemExit(f"no gevent worker among the children of {server_pid}")


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for {pid}")


def settled_rss(pid, seconds=3.0):
    """The RSS once it stopped moving (at most ``seconds`` of 0.5 s samples)."""
    last, deadline = rss_mb(pid), time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = rss_mb(pid)
        if abs(now - last) < 0.1:
            return now
        last = now
    return last


class SseStream:
    """One legacy SSE session: the GET stream open, read up to its endpoint event, then left idle."""

    def __init__(self, port, key):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.request("GET", SSE_PATH, headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError(f"SSE stream: HTTP {self.resp.status}")
        self.endpoint = None
        event = None
        while self.endpoint is None:
            line = self.resp.fp.readline().decode().rstrip("\r\n")
            if not line and self.resp.fp.closed:
                raise RuntimeError("SSE stream closed before its endpoint event")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "endpoint":
                self.endpoint = line[5:].strip()

    def ping(self, http_port, key):
        """One request of the session (a JSON-RPC ping, answered on the stream), through the HTTP port."""
        post = http.client.HTTPConnection("127.0.0.1", http_port, timeout=30)
        post.request("POST", self.endpoint, '{"jsonrpc":"2.0","id":1,"method":"ping"}',
                     {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        status = post.getresponse().status
        post.close()
        if status != 202:
            raise RuntimeError(f"POST {self.endpoint}: HTTP {status}")
        while True:
            line = self.resp.fp.readline().decode()
            if line.startswith("data:") and '"id":1' in line:
                return

    def close(self):
        self.conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    with bench_server("ssemem", partners=0, keep=args.keep, label="Mem", mode="prefork") as (
            _setup, _db, server, admin, key):
        admin.set_param("ocore_mcp.max_streams_per_key", args.sessions + 10)  # every session on one key
        worker = gevent_worker(server.proc.pid)
        started = rss_mb(worker)
        # warm-up: the code paths of a session (open, a request answered on the stream, close)
        for _ in range(5):
            stream = SseStream(server.gevent_port, key.secret)
            stream.ping(server.port, key.secret)
            stream.close()
        time.sleep(2)
        idle = settled_rss(worker)
        opened = time.monotonic()
        streams = [SseStream(server.gevent_port, key.secret) for _ in range(args.sessions)]
        open_seconds = time.monotonic() - opened
        assert gevent_worker(server.proc.pid) == worker, "the gevent worker was restarted (memory limit?)"
        loaded = settled_rss(worker, seconds=5)
        # every stream is still alive: one request on the last and the first session answers
        streams[0].ping(server.port, key.secret)
        streams[-1].ping(server.port, key.secret)
        for stream in streams:
            stream.close()
        time.sleep(3)
        after = settled_rss(worker)
    per_session_kb = (loaded - idle) * 1024 / args.sessions
    print(f"\ngevent worker {worker} (prefork, 2 HTTP workers), pid {os.getpid()} as the client\n")
    print(f"RSS at start                    {started:8.1f} MB")
    print(f"RSS idle (after warm-up)        {idle:8.1f} MB")
    print(f"RSS with {args.sessions} idle SSE sessions  {loaded:8.1f} MB  "
          f"(+{loaded - idle:.1f} MB, {per_session_kb:.0f} KB per session; opened in {open_seconds:.1f} s)")
    print(f"RSS after closing them          {after:8.1f} MB")
    print(f"\n{args.sessions} idle sessions: +{loaded - idle:.1f} MB above the idle worker (target <= 50 MB)")


if __name__ == "__main__":
    main()
