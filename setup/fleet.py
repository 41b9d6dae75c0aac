"""setup/run --fleet: a control plane in front of two local instances, run by a host agent.

    <odoo venv python> setup/fleet.py ODOO_BIN ODOO_CONF PREFIX PORT

Databases PREFIX_control (ocore_mcp + ocore_control), PREFIX_a and PREFIX_b (ocore_mcp) are created when
missing. The host agent (python -m ocore_control.agent) starts the two instances (process driver, ports
PORT+1 and PORT+2); the control plane runs on PORT. On the first run the instances are enrolled with
one-time tokens, the server gets its agent secret and a key of the administrator is printed. Everything
runs until Ctrl+C; state under .local/fleet/.
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".local" / "fleet"


def log(message):
    print(f"\033[1;34m[ocore fleet]\033[0m {message}", flush=True)


class Rpc:
    """The admin's web session on one database (JSON-RPC, as the backend does)."""

    def __init__(self, url, db):
        self.url = url
        self.cookie = None
        self.call_path("/web/session/authenticate", {"db": db, "login": "admin", "password": "admin"})

    def call_path(self, path, params):
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}).encode()
        headers = {"Content-Type": "application/json", **({"Cookie": self.cookie} if self.cookie else {})}
        req = urllib.request.Request(self.url + path, data=body, headers=headers)  # noqa: S310 - local URL
        with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - local URL
            cookie = resp.headers.get("Set-Cookie")
            if cookie:
                self.cookie = cookie.split(";", 1)[0]
            data = json.loads(resp.read())
        if "error" in data:
            raise RuntimeError((data["error"].get("data") or {}).get("message") or data["error"])
        return data["result"]

    def __call__(self, model, method, *args, **kwargs):
        return self.call_path(f"/web/dataset/call_kw/{model}/{method}",
                              {"model": model, "method": method, "args": list(args), "kwargs": kwargs})


def wait_healthy(url, proc=None, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited ({proc.returncode})")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/web/health", timeout=3) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        time.sleep(0.5)
    raise SystemExit(f"{url} not healthy after {timeout}s")


MODULE_STATE = """
import configparser, sys
import psycopg2
c = configparser.ConfigParser()
c.read(sys.argv[1])
o = c["options"]
kw = {k: o.get("db_" + k) for k in ("host", "port", "user", "password") if o.get("db_" + k) not in (None, "", "False")}
try:
    conn = psycopg2.connect(dbname=sys.argv[2], **kw)
except psycopg2.OperationalError:
    print("missing")
    sys.exit()
cr = conn.cursor()
cr.execute("SELECT state FROM ir_module_module WHERE name = %s", (sys.argv[3],))
row = cr.fetchone()
print(row[0] if row else "missing")
"""


def module_installed(python, conf, db, addon):
    out = subprocess.run([python, "-c", MODULE_STATE, conf, db, addon], capture_output=True, text=True, check=False)
    return out.stdout.strip() == "installed"


def main():
    odoo_bin, conf, prefix, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    python = sys.executable
    STATE.mkdir(parents=True, exist_ok=True)
    dbs = {"control": (f"{prefix}_control", "ocore_mcp,ocore_control"), "a": (f"{prefix}_a", "ocore_mcp"),
           "b": (f"{prefix}_b", "ocore_mcp")}
    for db, addons in dbs.values():
        if not module_installed(python, conf, db, addons.split(",")[-1]):
            log(f"installing {addons} into {db}")
            subprocess.run([python, odoo_bin, "-c", conf, "-d", db, "-i", addons, "--stop-after-init",
                            "--without-demo=True", "--no-http", "--max-cron-threads=0"], check=True)
    procs = []

    def stop_all(*_args):
        stop_instances()
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)
        sys.exit(0)

    def stop_instances():
        """The instances run in their own process groups: the agent stops them (a signed request)."""
        if not (STATE / "agent.json").exists():
            return
        sys.path.insert(0, str(REPO))
        from ocore_control.agent import signing  # noqa: PLC0415 - the agent package imports no Odoo

        conf = json.loads((STATE / "agent.json").read_text())
        for inst in conf["instances"]:
            path = f"/v1/instances/{inst['name']}/stop"
            req = urllib.request.Request(f"http://{conf['listen']}{path}", data=b"", method="POST",  # noqa: S310
                                         headers=signing.sign(conf["secret"], "POST", path, b""))
            with contextlib.suppress(OSError):
                urllib.request.urlopen(req, timeout=60).close()  # noqa: S310

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    cp_url = f"http://127.0.0.1:{port}"
    cp_db = dbs["control"][0]
    cp = subprocess.Popen([python, odoo_bin, "-c", conf, "-d", cp_db, "--http-port", str(port), "--workers=0"],
                          start_new_session=True, stdout=open(STATE / "control.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
    procs.append(cp)
    wait_healthy(cp_url, cp)
    admin = Rpc(cp_url, cp_db)
    config_path = STATE / "agent.json"
    first_run = not config_path.exists()
    if first_run:
        uid = admin("res.users", "search", [("login", "=", "admin")])[0]
        org = admin("ocore.control.organization", "create", {
            "name": "My agency", "member_ids": [(0, 0, {"user_id": uid, "role": "owner"})]})
        server = admin("ocore.control.server", "create", {
            "name": "this machine", "organization_id": org, "host": "127.0.0.1",
            "agent_url": f"http://127.0.0.1:{port + 10}"})
        action = admin("ocore.control.server", "action_generate_agent_secret", [server])
        secret = action["context"]["default_secret"]  # shown once, stored nowhere
        instances = []
        for name, offset in (("a", 1), ("b", 2)):
            db = dbs[name][0]
            instances.append({
                "name": name, "driver": "process", "database": db, "http_port": port + offset,
                "command": [python, odoo_bin, "-c", conf, "-d", db, "--http-port", str(port + offset),
                            "--workers=0", "--max-cron-threads=0"],
                "cwd": str(REPO), "log_file": str(STATE / f"{name}.log"),
                "health_url": f"http://127.0.0.1:{port + offset}/web/health"})
        config = {"server_id": server, "secret": secret, "listen": f"127.0.0.1:{port + 10}",
                  "control_plane_url": cp_url, "heartbeat_seconds": 30, "state_dir": str(STATE / "agent-state"),
                  "backup_dir": str(STATE / "backups"), "instances": instances}
        config_path.write_text(json.dumps(config, indent=2))
        config_path.chmod(0o600)
    config = json.loads(config_path.read_text())
    agent = subprocess.Popen([python, "-m", "ocore_control.agent", "--config", str(config_path), "--autostart"],
                             cwd=str(REPO), start_new_session=True, stdout=open(STATE / "agent.log", "ab"),  # noqa: SIM115
                             stderr=subprocess.STDOUT)
    procs.insert(0, agent)
    for inst in config["instances"]:
        wait_healthy(f"http://127.0.0.1:{inst['http_port']}")
    key_line = ""
    if first_run:
        org = admin("ocore.control.organization", "search", [])[0]
        server = config["server_id"]
        for inst in config["instances"]:
            url = f"http://127.0.0.1:{inst['http_port']}"
            rpc = Rpc(url, inst["database"])
            link = rpc("ocore.mcp.control.link", "create", {"name": "local control plane"})
            token = rpc("ocore.mcp.control.link", "action_generate_token", [link])
            record = admin("ocore.control.instance", "create", {
                "name": f"Instance {inst['name'].upper()}", "slug": inst["database"].lower().replace("-", "_"),
                "organization_id": org, "server_id": server, "driver": "process", "agent_name": inst["name"],
                "environment": "development", "url": url, "database": inst["database"],
                "http_port": inst["http_port"]})
            wizard = admin("ocore.control.enrol", "create", {"instance_id": record, "url": url, "token": token})
            admin("ocore.control.enrol", "action_enrol", [wizard])
            log(f"enrolled {inst['database']} ({url})")
        key = admin("ocore.mcp.key", "create", {"name": "fleet admin key " + secrets.token_hex(2),
                                                "organization_id": org})
        action = admin("ocore.mcp.key", "action_generate_secret", [key])
        secret = (action.get("context") or {}).get("default_secret")
        if not secret and action.get("res_id"):
            secret = admin(action["res_model"], "read", [action["res_id"]], ["secret"])[0]["secret"]
        key_line = f"\n New API key of admin (shown once, stored hashed):\n   {secret}\n"
    print(f"""
=====================================================================================
 oCore control plane — database {cp_db}, two instances run by the host agent
 Control plane:        {cp_url}/web   (admin / admin: change it)  — Control Plane > Instances
 MCP, Streamable HTTP: {cp_url}/ocore/mcp/stream
 MCP, SSE:             {cp_url}/ocore/mcp/sse
 Instances:            {", ".join(f"http://127.0.0.1:{i['http_port']} ({i['database']})" for i in config["instances"])}
 Host agent:           http://{config["listen"]} (signed requests only); logs in {STATE}
{key_line}=====================================================================================
""", flush=True)
    log("running; Ctrl+C stops the control plane, the agent and the instances")
    while all(p.poll() is None for p in procs):
        time.sleep(1)
    log("a process exited; stopping the fleet")
    stop_all()


if __name__ == "__main__":
    main()
