"""search_read through our MCP server vs mcp-server-odoo 0.9.0, by the same SDK client, in one run.

mcp-server-odoo (PyPI) is the external MCP server most Odoo users run today: a separate process
that talks XML-RPC to Odoo. This benchmark starts a real Odoo server on a fresh database (the
end-to-end harness: ocore_mcp, 80 "Bench Partner" partners, an API key), starts mcp-server-odoo
against the same server and database (``ODOO_YOLO=read``, XML-RPC) over its stdio transport and its
streamable-http transport, and drives every MCP path with the official SDK client (``mcp.Client``):

- ours: tools/call ``<slug>_search_read`` over Streamable HTTP (2025-11-25 session and 2026-07-28)
  and over the legacy SSE transport;
- theirs: tools/call ``search_records`` over stdio and over streamable-http;
- XML-RPC ``execute_kw search_read`` (plain ``xmlrpc.client``) as the common baseline;
- tools/list of both (latency, payload size, tool count) and session start (their stdio process
  spawn + initialize; over HTTP on both sides, by the same client code: initialize + initialized and the
  answer to the optional GET stream the SDK opens right after, the close not timed).

Every path reads the same 80 records (checked before timing) with the same domain and fields. The
paths are interleaved round by round so that machine noise hits them alike: compare the ratios,
absolute times vary from run to run on a shared machine.

mcp-server-odoo is installed in its own virtualenv, ``.venv-bench`` (created on first run from
bench/requirements.txt), so that it never touches Odoo's or the test virtualenv.

Run with the test virtualenv:  .venv-test/bin/python bench/bench_peers.py [--calls 100]
"""

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import xmlrpc.client
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO / "tests"))

import harness  # noqa: E402
from benchlib import bench_server  # noqa: E402
import httpx2  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp_helpers import MODERN, connect  # noqa: E402
from mcp_types import Implementation  # noqa: E402

FIELDS = ["name", "email", "phone", "is_company", "city", "country_id"]
DOMAIN = [["name", "ilike", "Bench"]]
LIMIT = 80
PARTNERS = 80
VENV = REPO / ".venv-bench"
PEER_BIN = VENV / "bin" / "mcp-server-odoo"
PEER_TOOL = "search_records"
CLIENT_KW = {  # the same SDK client settings on both sides (the suite's: no list cache, bounded reads)
    "cache": None,
    "read_timeout_seconds": 60,
    "client_info": Implementation(name="ocore-bench", version="1.0"),
}


def ensure_venv():
    """Create .venv-bench with mcp-server-odoo if it is missing."""
    if PEER_BIN.exists():
        print(f"using {PEER_BIN}")
        return
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(BENCH_DIR / "requirements.txt")]
    for cmd in ([sys.executable, "-m", "venv", str(VENV)], pip):
        print("+ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, timeout=900)
    if not PEER_BIN.exists():
        raise SystemExit(f"{PEER_BIN} is missing after the install")


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def payload_kb(result) -> float:
    body = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return len(json.dumps(body, separators=(",", ":"))) / 1024


def peer_env(server, db, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODOO_")}
    env.update({
        "ODOO_URL": server.url,
        "ODOO_DB": db,
        "ODOO_USER": harness.ADMIN_LOGIN,
        "ODOO_PASSWORD": harness.ADMIN_PASSWORD,
        "ODOO_YOLO": "read",
        "ODOO_RPC_TRANSPORT": "xmlrpc",
        "ODOO_MCP_MAX_LIMIT": str(max(100, LIMIT)),
    })
    env.update(extra)
    return env


def wait_port(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"mcp-server-odoo (streamable-http) exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise SystemExit(f"mcp-server-odoo (streamable-http) did not listen on port {port} within {timeout}s")


@contextlib.asynccontextmanager
async def peer_stdio(server, db, workdir, errlog):
    params = StdioServerParameters(command=str(PEER_BIN), args=[], env=peer_env(server, db), cwd=str(workdir))
    async with Client(stdio_client(params, errlog=errlog), mode="legacy", **CLIENT_KW) as client:
        yield client


@contextlib.asynccontextmanager
async def peer_http(url, mode="legacy"):
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300)) as http, \
            Client(streamable_http_client(url, http_client=http), mode=mode, **CLIENT_KW) as client:
        yield client


def rows_of(result):
    """The records of a search result, ours or theirs (both put them in structuredContent.records)."""
    assert not result.is_error, result.content
    return result.structured_content["records"]


def summary(rows):
    return sorted((r["id"], r["name"]) for r in rows)


async def session_start(cm_factory):
    """Milliseconds to open a connected SDK client (the close is not timed)."""
    async with contextlib.AsyncExitStack() as stack:
        t = time.perf_counter()
        await stack.enter_async_context(cm_factory())
        return (time.perf_counter() - t) * 1000


@contextlib.asynccontextmanager
async def sdk_session(url, headers, mode, streamed):
    """An SDK client over Streamable HTTP whose GET stream's answer sets the event ``streamed``: the same
    client code for both servers (only the URL and the headers differ)."""

    async def on_response(response):
        if response.request.method == "GET":
            streamed.set()

    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300),
                                  event_hooks={"response": [on_response]}) as http, \
            Client(streamable_http_client(url, http_client=http), mode=mode, **CLIENT_KW) as client:
        yield client


async def full_session_start(url, headers, mode="legacy"):
    """Milliseconds until a new SDK session is usable with its optional GET stream open (initialize +
    initialized, and the stream's answer, which the SDK asks for right after initialized; a server without
    a stream answers 405 at once): the close is not timed."""
    streamed = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        t = time.perf_counter()
        await stack.enter_async_context(sdk_session(url, headers, mode, streamed))
        if mode == "legacy":
            await asyncio.wait_for(streamed.wait(), 30)
        return (time.perf_counter() - t) * 1000


async def bench(args, setup, server, db, key, workdir, errlog):
    tool = f"{server.slug}_search_read"
    ours_args = {"model": "res.partner", "domain": DOMAIN, "fields": FIELDS, "limit": LIMIT}
    peer_args = {"model": "res.partner", "domain": DOMAIN, "fields": FIELDS, "limit": LIMIT}
    rpc = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/object", allow_none=True)
    uid = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/common").authenticate(
        db, harness.ADMIN_LOGIN, harness.ADMIN_PASSWORD, {})

    def xmlrpc_rows():
        return rpc.execute_kw(db, uid, harness.ADMIN_PASSWORD, "res.partner", "search_read", [DOMAIN],
                              {"fields": FIELDS, "limit": LIMIT})

    # their streamable-http server, a process of its own
    peer_port = harness.free_port()
    peer_url = f"http://127.0.0.1:{peer_port}/mcp"
    http_proc = subprocess.Popen(
        [str(PEER_BIN)], cwd=str(workdir), stdout=errlog, stderr=errlog, start_new_session=True,
        env=peer_env(server, db, ODOO_MCP_TRANSPORT="streamable-http", ODOO_MCP_HOST="127.0.0.1",
                     ODOO_MCP_PORT=str(peer_port)))
    try:
        wait_port(peer_port, http_proc)
        async with contextlib.AsyncExitStack() as stack:
            enter = stack.enter_async_context
            t = time.perf_counter()
            them_stdio = await enter(peer_stdio(server, db, workdir, errlog))
            first_spawn = (time.perf_counter() - t) * 1000
            them_http = await enter(peer_http(peer_url))
            ours = {
                "stream-2026": await enter(connect(server.url, key, "stream", MODERN, **CLIENT_KW)),
                "stream-legacy": await enter(connect(server.url, key, "stream", "legacy", **CLIENT_KW)),
                "sse-legacy": await enter(connect(server.url, key, "sse", "legacy", **CLIENT_KW)),
            }
            # Odoo's own cheapest request (auth='none', no database work) by the HTTP client the SDK uses
            health_http = await enter(httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300)))

            # the same work: the same 80 records on every path
            expected = summary(xmlrpc_rows())
            assert len(expected) == LIMIT, f"XML-RPC returned {len(expected)} rows, expected {LIMIT}"
            for name, client in ours.items():
                got = summary(rows_of(await client.call_tool(tool, ours_args)))
                assert got == expected, f"ours ({name}) returned other records"
            for name, client in (("stdio", them_stdio), ("streamable-http", them_http)):
                got = summary(rows_of(await client.call_tool(PEER_TOOL, peer_args)))
                assert got == expected, f"mcp-server-odoo ({name}) returned other records: {len(got)} rows"
            print(f"checked: every path returns the same {LIMIT} records", flush=True)

            async def rpc_call():
                assert len(xmlrpc_rows()) == LIMIT

            def call(client, name, arguments):
                async def fn():
                    result = await client.call_tool(name, arguments)
                    assert not result.is_error, result.content
                return fn

            def lister(client):
                async def fn():
                    await client.list_tools()
                return fn

            # the SDK warns on every ping that 2026-07-28 removed it; these clients are legacy ones
            warnings.filterwarnings("ignore", message="ping is removed")

            def pinger(client):
                async def fn():
                    await client.send_ping()
                return fn

            async def health():
                resp = await health_http.get(f"{server.url}/web/health")
                assert resp.status_code == 200, resp.status_code

            def starter(url, headers, mode="legacy"):
                async def fn():  # the time of the start alone, not of the close that follows
                    return await full_session_start(url, headers, mode)
                return fn

            ours_url = f"{server.url}/ocore/mcp/stream"
            ours_headers = {"Authorization": f"Bearer {key.secret}"}

            paths = {
                "ours tools/call search_read (stream, 2026-07-28)": call(ours["stream-2026"], tool, ours_args),
                "ours tools/call search_read (stream, 2025-11-25)": call(ours["stream-legacy"], tool, ours_args),
                "ours tools/call search_read (SSE, 2025-11-25)": call(ours["sse-legacy"], tool, ours_args),
                "mcp-server-odoo search_records (stdio)": call(them_stdio, PEER_TOOL, peer_args),
                "mcp-server-odoo search_records (streamable-http)": call(them_http, PEER_TOOL, peer_args),
                "xml-rpc execute_kw search_read": rpc_call,
                "ours tools/list (stream, 2026-07-28)": lister(ours["stream-2026"]),
                "ours tools/list (stream, 2025-11-25)": lister(ours["stream-legacy"]),
                "mcp-server-odoo tools/list (stdio)": lister(them_stdio),
                "mcp-server-odoo tools/list (streamable-http)": lister(them_http),
                # the floor of an SDK round trip on each side: a ping does no work on the server (ping
                # exists only in the handshake revisions: 2026-07-28 removed it)
                "ours ping (stream, 2025-11-25)": pinger(ours["stream-legacy"]),
                "mcp-server-odoo ping (stdio)": pinger(them_stdio),
                "mcp-server-odoo ping (streamable-http)": pinger(them_http),
                "odoo /web/health (httpx, the SDK's HTTP client)": health,
                "ours session start (stream, initialize + GET stream)": starter(ours_url, ours_headers),
                "ours session start (stream, 2026-07-28)": starter(ours_url, ours_headers, MODERN),
                "mcp-server-odoo session start (streamable-http, initialize + GET stream)": starter(peer_url, {}),
            }
            timings = {name: [] for name in paths}
            for _ in range(args.warmup):
                for fn in paths.values():
                    await fn()
            started = time.monotonic()
            for _ in range(args.calls):
                for name, fn in paths.items():
                    t = time.perf_counter()
                    measured = await fn()  # a session start times itself (its close is not part of it)
                    timings[name].append(measured if measured is not None else (time.perf_counter() - t) * 1000)
            print(f"timed {args.calls} rounds of {len(paths)} paths in {time.monotonic() - started:.1f}s", flush=True)

            # their stdio session start: a process spawn + initialize, a few times (about a second each)
            spawns = [first_spawn]
            for _ in range(args.spawns - 1):
                spawns.append(await session_start(lambda: peer_stdio(server, db, workdir, errlog)))
            timings["mcp-server-odoo session start (stdio: spawn + initialize)"] = spawns

            listings = {
                "ours (2026-07-28)": await ours["stream-2026"].list_tools(),
                "ours (2025-11-25)": await ours["stream-legacy"].list_tools(),
                "mcp-server-odoo (stdio)": await them_stdio.list_tools(),
                "mcp-server-odoo (streamable-http)": await them_http.list_tools(),
            }
    finally:
        http_proc.terminate()
        try:
            http_proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            http_proc.kill()
            http_proc.wait(timeout=15)
    return timings, listings


def report(args, timings, listings):
    base_rpc = statistics.median(timings["xml-rpc execute_kw search_read"])
    print(f"\nsearch_read of {LIMIT} res.partner rows, {len(FIELDS)} fields, {args.calls} calls per path, "
          "official MCP SDK client on every MCP path (threaded Odoo server, one connection per path)\n")
    print(f"{'path':62} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'vs XML-RPC':>11}")
    for name, values in timings.items():
        p50 = statistics.median(values)
        print(f"{name:62} {len(values):4d} {p50:8.2f} {percentile(values, 0.9):8.2f} {p50 / base_rpc:11.2f}")

    print("\nspeedup, mcp-server-odoo p50 / ours p50 (search_read; target >= 4x):")
    ours = [n for n in timings if n.startswith("ours tools/call")]
    theirs = [n for n in timings if n.startswith("mcp-server-odoo search_records")]
    for them in theirs:
        for us in ours:
            ratio = statistics.median(timings[them]) / statistics.median(timings[us])
            print(f"  {them[len('mcp-server-odoo '):]:34} / {us[len('ours tools/call '):]:34} {ratio:6.2f}x")

    floors = {
        "ours tools/call search_read (stream, 2025-11-25)": "ours ping (stream, 2025-11-25)",
        "mcp-server-odoo search_records (stdio)": "mcp-server-odoo ping (stdio)",
        "mcp-server-odoo search_records (streamable-http)": "mcp-server-odoo ping (streamable-http)",
    }
    net = {name: statistics.median(timings[name]) - statistics.median(timings[ping]) for name, ping in floors.items()}
    print("\nsearch_read p50 minus the ping p50 of the same connection (the server's work beyond the SDK round trip):")
    for name, value in net.items():
        print(f"  {name:58} {value:8.2f} ms")
    for them in theirs:
        for us in ours:
            if them in net and us in net and net[us] > 0:
                print(f"  speedup {them[len('mcp-server-odoo '):]:34} / {us[len('ours tools/call '):]:34} "
                      f"{net[them] / net[us]:6.2f}x")

    # what no work on our side could beat: the SDK's round trip to Odoo (a ping does no work beyond finding
    # the key) against their whole search
    ping = statistics.median(timings["ours ping (stream, 2025-11-25)"])
    print("\nceiling of the speedup: mcp-server-odoo search p50 / our ping p50 (a search costing nothing more):")
    for them in theirs:
        ceiling = statistics.median(timings[them]) / ping
        print(f"  {them[len('mcp-server-odoo '):]:34} / ping {ping:6.2f} ms {ceiling:6.2f}x")

    floor = statistics.median(timings["odoo /web/health (httpx, the SDK's HTTP client)"])
    print(f"\nOdoo's request floor: /web/health p50 {floor:.2f} ms; our ping {ping:.2f} ms = {ping / floor:.2f} x "
          f"(our work per request beyond Odoo's cheapest one, with the SDK's own: {ping - floor:.2f} ms)")

    ours_start = statistics.median(timings["ours session start (stream, initialize + GET stream)"])
    their_start = statistics.median(
        timings["mcp-server-odoo session start (streamable-http, initialize + GET stream)"])
    print(f"\nSDK session start (initialize + initialized + the GET stream's answer), ours / mcp-server-odoo's "
          f"HTTP: {ours_start:.1f} / {their_start:.1f} ms = {ours_start / their_start:.2f} (target <= 1.00)")

    print("\ntools/list (one call, no cursor):")
    for name, listing in listings.items():
        more = " (more pages)" if listing.next_cursor else ""
        print(f"  {name:36} {len(listing.tools):4d} tools {payload_kb(listing):8.1f} KB{more}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="timed calls per path")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    parser.add_argument("--spawns", type=int, default=5, help="stdio process starts of mcp-server-odoo to time")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    ensure_venv()
    with bench_server("peers", partners=PARTNERS, keep=args.keep) as (setup, db, server, _admin, key):
        # mcp-server-odoo reads a .env of its working directory: give it an empty one; its log goes to a file
        with tempfile.TemporaryDirectory(prefix="bench-peers-") as workdir, \
                open(Path(workdir) / "mcp-server-odoo.log", "w") as errlog:
            try:
                timings, listings = asyncio.run(bench(args, setup, server, db, key, Path(workdir), errlog))
            except BaseException:
                errlog.flush()
                print("mcp-server-odoo log (tail):\n" + harness.tail(Path(workdir) / "mcp-server-odoo.log", 40))
                raise
    report(args, timings, listings)


if __name__ == "__main__":
    main()
