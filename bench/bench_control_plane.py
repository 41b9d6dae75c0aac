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
import base64
import hashlib
import hmac
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx2  # noqa: E402
from control_fleet import MEMBER_LOGIN, control_fleet  # noqa: E402
from harness import OdooSetup  # noqa: E402
from mcp_helpers import STREAM_PATH, modern_request  # noqa: E402


def timed(client, url, secret, method, params, n, check):
    samples = []
    for i in range(n):
        body, headers = modern_request(method, params, id=i + 1)
        headers["Authorization"] = f"Bearer {secret() if callable(secret) else secret}"
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


def load():
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def control_plane_signer(fleet, instance):
    """A function returning a new assertion for ``instance`` as the control plane signs a forwarded call of the
    member (same key, derived from the control plane database's secret as ocore_control/lib/keys.py does
    without a configured master key; same claims): the bench times the instance's side of a forwarded call
    alone with it."""
    cp = fleet.cp_admin
    params = {row["key"]: row["value"] for row in cp.search_read(
        "ir.config_parameter", [("key", "in", ["database.uuid", "database.secret"])], ["key", "value"])}
    db_uuid, secret = params["database.uuid"], params["database.secret"]
    generation = cp.search_read("ocore.control.instance", [("id", "=", instance.record_id)],
                                ["credential_generation"])[0]["credential_generation"]
    label = f"instance/{instance.record_id}/{generation}"
    seed = hmac.new(secret.encode(), f"ocore-control/{db_uuid}/{label}".encode(), hashlib.sha256).digest()
    private = Ed25519PrivateKey.from_private_bytes(seed)
    kid = f"ocore-control-{db_uuid[:8]}-{instance.record_id}-{generation}"
    header = _b64(json.dumps({"alg": "EdDSA", "kid": kid, "typ": "JWT"}).encode())
    scope = {"read_only": False, "categories": [], "tool_allow": [], "tool_deny": [], "models": []}

    def sign():
        now = int(time.time())
        claims = {"iss": f"ocore-control:{db_uuid}", "aud": f"ocore-instance:{instance.slug}", "sub": MEMBER_LOGIN,
                  "iat": now, "nbf": now - 5, "exp": now + 60, "jti": secrets.token_hex(16),
                  "cid": secrets.token_hex(16), "scp": scope, "pur": "call"}
        signing_input = header + b"." + _b64(json.dumps(claims).encode())
        return (signing_input + b"." + _b64(private.sign(signing_input))).decode()

    return sign


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

        sign = control_plane_signer(fleet, a)
        print(f"  ({load()} before the calls)")
        with httpx2.Client(timeout=120) as client:
            for url, secret in ((a.server.url, direct_key.secret), (fleet.cp.url, org_key.secret),
                                (a.server.url, sign)):
                timed(client, url, secret, "tools/call", call, 20, ok)  # warm-up
            direct, forwarded, floor, leg = [], [], [], []
            # one of each in turn: a burst of load on the machine hits every kind. The empty request to the control
            # plane is not the one right after a forwarded call: the control plane completes that call's audit row
            # once the answer is out, while the bench calls the instance
            for _ in range(args.calls):
                direct += timed(client, a.server.url, direct_key.secret, "tools/call", call, 1, ok)
                forwarded += timed(client, fleet.cp.url, org_key.secret, "tools/call", call, 1, ok)
                leg += timed(client, a.server.url, sign, "tools/call", call, 1, ok)
                floor.append(health(client, fleet.cp.url))
            d, f, h, g = p50(direct), p50(forwarded), p50(floor), p50(leg)
            print(f"\ntools/call {call['name']} (search_read, 20 records), {len(direct)} calls each ({load()}):")
            print(f"  direct to the instance     p50 {d:7.2f} ms")
            print(f"  forwarded (control plane)  p50 {f:7.2f} ms")
            print(f"  ratio                      {f / d:7.2f}  (target <= 1.3)")
            # the least a hop through an Odoo server can cost: a request that Odoo answers doing nothing. The
            # direct call includes nothing the forwarded call's instance leg does not (same instance, same
            # pipeline; its client's cost, like the empty request's, is the bench's own, paid once per call)
            print(f"  control plane /web/health  p50 {h:7.2f} ms (one Odoo request doing nothing)")
            print(f"  lower bound of the ratio   {(d + h) / d:7.2f}  (direct + one empty Odoo request, over direct)")
            print(f"  instance leg alone         p50 {g:7.2f} ms (the instance called with an assertion signed as "
                  "the control plane signs it)")
            print(f"    of which the assertion   p50 {g - d:7.2f} ms (instance leg - direct: verify, single use, "
                  "mapped user)")
            print(f"  control plane's own work   p50 {f - g - h:7.2f} ms (forwarded - instance leg - empty request: "
                  "MCP parsing, key, bookkeeping, signing, the hop's client)")

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
        print(f"\n(member {MEMBER_LOGIN}; each instance runs the calls as its own user of that login; {load()})")


if __name__ == "__main__":
    main()
