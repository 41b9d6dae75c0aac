"""A real host agent (``python -m ocore_control.agent``) for the tests, and a signed client for it."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness import ARTIFACTS, REPO, HarnessError, free_port, stop_process_group, tail

sys.path.insert(0, str(REPO))
from ocore_control.agent import signing  # noqa: E402  (the agent package imports no Odoo)


class AgentProcess:
    def __init__(self, setup, instances, name="agent", control_plane_url=None, server_id=1, secret=None, **extra):
        self.setup = setup
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.secret = secret or secrets.token_hex(32)
        self.dir = ARTIFACTS / f"{name}-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = {
            "server_id": server_id, "secret": self.secret, "listen": f"127.0.0.1:{self.port}",
            "control_plane_url": control_plane_url, "heartbeat_seconds": 2,
            "state_dir": str(self.dir / "state"), "backup_dir": str(self.dir / "backups"),
            "pg": {k: v for k, v in setup.pg_params().items() if k != "dbname"}, "instances": instances, **extra,
        }
        self.config_path = self.dir / "agent.json"
        self.log_path = self.dir / "agent.log"
        self.proc = None

    def start(self, timeout=20):
        self.config_path.write_text(json.dumps(self.config, indent=2))
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept by the child
        self.proc = subprocess.Popen([str(self.setup.python), "-m", "ocore_control.agent", "--config",
                                      str(self.config_path)], cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=self.setup.process_env())
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"the agent exited ({self.proc.returncode}):\n{tail(self.log_path)}")
            status, _body = self.raw("GET", "/v1/status", sign=False)
            if status == 401:
                return self
            time.sleep(0.2)
        raise HarnessError(f"the agent did not answer:\n{tail(self.log_path)}")

    def stop(self):
        if self.proc is not None:
            stop_process_group(self.proc, 20)

    def raw(self, method, path, body=b"", headers=None, sign=True, secret=None, timeout=300):
        hdrs = {"Content-Type": "application/json"}
        if sign:
            hdrs.update(signing.sign(secret or self.secret, method, path, body))
        hdrs.update(headers or {})
        req = urllib.request.Request(self.url + path, data=body or None, headers=hdrs, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local test URL
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, ConnectionError):
            return None, b""

    def call(self, method, path, payload=None, expect=200, timeout=300):
        body = json.dumps(payload).encode() if payload is not None else b""
        status, data = self.raw(method, path, body, timeout=timeout)
        assert status == expect, f"{method} {path} -> {status}: {data[:1000]!r}\nagent log:\n{tail(self.log_path, 30)}"
        return json.loads(data) if data and data[:1] in b"{[" else data


def odoo_instance(setup, name, db, port):
    """An agent instance entry: an odoo-bin serving ``db`` that the process driver starts."""
    return {
        "name": name, "driver": "process", "database": db, "http_port": port,
        "command": setup.odoo_cmd("-d", db, f"--addons-path={setup.addons_path()}", "--http-interface", "127.0.0.1",
                                  "--http-port", str(port), "--workers=0", "--max-cron-threads=0"),
        "cwd": str(REPO), "health_url": f"http://127.0.0.1:{port}/web/health",
    }


def healthy(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/web/health", timeout=3) as resp:  # noqa: S310
            return resp.status == 200
    except OSError:
        return False


def cases(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
