"""Control plane overhead: a tools/call forwarded by the control plane against the same call made
directly to the instance (p50 ratio, target <= 1.3), and tools/list of a 10-instance federation against
one instance's tools/list (p50 ratio, target <= 3).

    .venv-test/bin/python bench/bench_control_plane.py [--instances 10] [--calls 200]

Everything is real: a control plane database and N instance databases, each on its own threaded Odoo
server (the instances are copies of one installed database, each with its own slug), enrolled with
one-time tokens. Requests are raw 2026-07-28 HTTP requests (one POST each, keep-alive), so that the
client's own cost does not hide the server's.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx2  # noqa: E402
from control_fleet import MEMBER_LOGIN, control_fleet  # noqa: E402
from harness import OdooSetup  # noqa: E402
from mcp_helpers import STREAM_PATH, modern_request  # noqa: E402


def timed(client, url, secret, method, params, n, check):
    samples = []
    for i in range(n):
        body, headers = modern_request(method, params, id=i + 1)
        headers["Authorization"] = f"Bearer {secret}"
        started = time.perf_counter()
        resp = client.post(url + STREAM_PATH, json=body, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        data = resp.json()
        assert "result" in data, data
        check(data["result"])
    return samples


def health(client, url):
    started = time.perf_counter()
    resp = client.get(url + "/web/health")
    elapsed = (time.perf_counter() - started) * 1000
    assert resp.status_code == 200, resp.status_code
    return elapsed


def list_all(client, url, secret):
    tools, cursor, started = [], None, time.perf_counter()
    while True:
        body, headers = modern_request("tools/list", {"cursor": cursor} if cursor else {})
        headers["Authorization"] = f"Bearer {secret}"
        result = client.post(url + STREAM_PATH, json=body, headers=headers).json()["result"]
        tools += result["tools"]
        cursor = result.get("nextCursor")
        if not cursor:
            return tools, (time.perf_counter() - started) * 1000


def p50(samples):
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--lists", type=int, default=30)
    args = parser.parse_args()
    setup = OdooSetup.from_env()
    print(f"starting a control plane and {args.instances} instances ...", flush=True)
    with control_fleet(setup, count=args.instances) as fleet:
        a = fleet.instances[0]
        direct_key = a.admin.create_key(name="bench direct", user_id=a.member_uid, rate_limit=100000)
        org_key = fleet.key(rate_limit=100000)
        one_key = fleet.key(rate_limit=100000, instance_ids=[(6, 0, [a.record_id])])
        for i in range(50):
            a.admin.create("res.partner", {"name": f"Bench Partner {i}"})
        call = {"name": f"{a.slug}_search_read", "arguments": {"model": "res.partner", "limit": 20,
                                                               "fields": ["name", "email"]}}

        def ok(result):
            assert not result.get("isError"), result

        with httpx2.Client(timeout=120) as client:
            for url, secret in ((a.server.url, direct_key.secret), (fleet.cp.url, org_key.secret)):
                timed(client, url, secret, "tools/call", call, 20, ok)  # warm-up
            direct, forwarded, floor = [], [], []
            for _ in range(args.calls):  # one of each in turn: a burst of load on the machine hits both sides
                direct += timed(client, a.server.url, direct_key.secret, "tools/call", call, 1, ok)
                forwarded += timed(client, fleet.cp.url, org_key.secret, "tools/call", call, 1, ok)
                floor.append(health(client, fleet.cp.url))
            print(f"\ntools/call {call['name']} (search_read, 20 records), {len(direct)} calls each:")
            print(f"  direct to the instance     p50 {p50(direct):7.2f} ms")
            print(f"  forwarded (control plane)  p50 {p50(forwarded):7.2f} ms")
            print(f"  ratio                      {p50(forwarded) / p50(direct):7.2f}  (target <= 1.3)")
            # the least a hop through an Odoo server can cost: a request that Odoo answers doing nothing
            print(f"  control plane /web/health  p50 {p50(floor):7.2f} ms (one Odoo request doing nothing)")
            print(f"  lower bound of the ratio   {(p50(direct) + p50(floor)) / p50(direct):7.2f}  "
                  f"(direct + one empty Odoo request, over direct)")
            print(f"  control plane's own work   p50 {p50(forwarded) - p50(direct) - p50(floor):7.2f} ms "
                  f"(forwarded - direct - empty request)")

            tools_one, _ms = list_all(client, a.server.url, direct_key.secret)
            tools_fed, cold = list_all(client, fleet.cp.url, org_key.secret)  # the cache fills here
            one = [list_all(client, a.server.url, direct_key.secret)[1] for _ in range(args.lists)]
            fed = [list_all(client, fleet.cp.url, org_key.secret)[1] for _ in range(args.lists)]
            fed1 = [list_all(client, fleet.cp.url, one_key.secret)[1] for _ in range(args.lists)]
            print(f"\ntools/list, all pages, {args.lists} listings each:")
            print(f"  one instance, direct           {len(tools_one):5d} tools  p50 {p50(one):7.2f} ms")
            print(f"  control plane, 1 instance      {len(tools_one) + 2:5d} tools  p50 {p50(fed1):7.2f} ms")
            print(f"  control plane, {args.instances:2d} instances   {len(tools_fed):5d} tools  p50 {p50(fed):7.2f} ms "
                  f"(first listing, lists fetched in parallel: {cold:.0f} ms)")
            print(f"  ratio {args.instances} instances / one direct  {p50(fed) / p50(one):7.2f}  (target <= 3)")
        print(f"\n(member {MEMBER_LOGIN}; each instance runs the calls as its own user of that login)")


if __name__ == "__main__":
    main()
