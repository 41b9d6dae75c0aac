"""The host agent's HTTP API (werkzeug). Every request must be signed by the control plane
(see signing.py); the agent listens only on the address of its configuration file.

    python -m ocore_control.agent --config /etc/ocore/agent.json

Configuration (JSON)::

    {"server_id": 3, "secret": "<from the control plane's 'Generate agent secret'>",
     "listen": "127.0.0.1:8470", "control_plane_url": "https://control.example.com",
     "heartbeat_seconds": 30, "state_dir": "/var/lib/ocore-agent", "backup_dir": "/var/backups/ocore",
     "backup_max_bytes": 2147483648, "pg": {"host": "...", "port": 5432, "user": "...", "password": "..."},
     "docker": {"base_url": "unix:///var/run/docker.sock"},
     "instances": [
        {"name": "prod", "driver": "process", "database": "prod", "command": ["odoo-bin", "-c", "..."],
         "log_file": "/var/log/odoo/prod.log", "filestore": "/var/lib/odoo/filestore/prod"},
        {"name": "staging", "driver": "docker", "database": "staging", "image": "odoo:18", "command": [...]}]}
"""

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import threading
import time
import urllib.request

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from . import signing
from .backups import BackupError, Backups
from .drivers import MAX_LINES, DockerDriver, DriverError, ProcessDriver

_logger = logging.getLogger("ocore_agent")

URLS = Map([
    Rule("/v1/status", endpoint="status", methods=["GET"]),
    Rule("/v1/instances", endpoint="instances", methods=["GET"]),
    Rule("/v1/instances/<name>", endpoint="instance", methods=["GET"]),
    Rule("/v1/instances/<name>/<any(start, stop, restart):action>", endpoint="action", methods=["POST"]),
    Rule("/v1/instances/<name>/logs", endpoint="logs", methods=["GET"]),
    Rule("/v1/instances/<name>/backup", endpoint="backup", methods=["POST"]),
    Rule("/v1/instances/<name>/backups", endpoint="backups", methods=["GET"]),
    Rule("/v1/instances/<name>/restore", endpoint="restore", methods=["POST"]),
    Rule("/v1/disk", endpoint="disk", methods=["GET"]),
])


class Agent:
    def __init__(self, config):
        self.config = config
        self.secret = config["secret"]
        if len(self.secret) < 32:
            raise ValueError("the agent secret is too short (generate it on the control plane)")
        self.nonces = signing.NonceCache()
        self.instances = {inst["name"]: inst for inst in config.get("instances") or []}
        state_dir = config.get("state_dir") or os.path.join(config.get("backup_dir", "."), ".state")
        self.drivers = {"process": ProcessDriver(state_dir)}
        if any(inst.get("driver") == "docker" for inst in self.instances.values()):
            self.drivers["docker"] = DockerDriver((config.get("docker") or {}).get("base_url"))
        self.backups = Backups(config["backup_dir"], config.get("pg"),
                               config.get("backup_max_bytes") or 2 * 1024**3)
        self.locks = {name: threading.Lock() for name in self.instances}

    # -- helpers -----------------------------------------------------------------------------

    def driver(self, inst):
        try:
            return self.drivers[inst.get("driver", "process")]
        except KeyError:
            raise DriverError(f"unknown driver {inst.get('driver')!r}") from None

    def inst(self, name):
        inst = self.instances.get(name)
        if inst is None:
            raise NotFound(f"no instance {name!r} on this agent")
        return inst

    def status_of(self, inst):
        try:
            row = self.driver(inst).status(inst)
        except Exception as exc:  # noqa: BLE001 - one broken instance never hides the others
            row = {"name": inst["name"], "status": "error", "error": str(exc)[:300]}
        row.update(database=inst.get("database"), http_port=inst.get("http_port"))
        return row

    def status(self):
        usage = shutil.disk_usage(self.backups.dir)
        return {"server_id": self.config.get("server_id"), "load": os.getloadavg()[0],
                "disk": {"total": usage.total, "used": usage.used, "free": usage.free},
                "instances": [self.status_of(inst) for inst in self.instances.values()]}

    # -- HTTP --------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except HTTPException as exc:
            response = json_response({"error": exc.description}, exc.code)
        return response(environ, start_response)

    def dispatch(self, request):
        body = request.get_data()
        path = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
        try:
            signing.verify(self.secret, request.method, path, body, request.headers, self.nonces)
        except signing.SignatureError as exc:
            _logger.warning("refused %s %s from %s: %s", request.method, request.path, request.remote_addr, exc)
            return json_response({"error": f"unauthorized: {exc}"}, 401)
        adapter = URLS.bind_to_environ(request.environ)
        endpoint, args = adapter.match()
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return json_response({"error": "the body must be JSON"}, 400)
        if not isinstance(payload, dict):
            return json_response({"error": "the body must be a JSON object"}, 400)
        try:
            return getattr(self, f"on_{endpoint}")(request, payload, **args)
        except HTTPException:
            raise
        except (BackupError, DriverError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        except Exception as exc:  # noqa: BLE001 - e.g. the Docker daemon: an answer, not a crash
            _logger.exception("agent request %s failed", request.path)
            return json_response({"error": f"{type(exc).__name__}: {exc}"}, 500)

    def on_status(self, request, payload):
        return json_response(self.status())

    def on_instances(self, request, payload):
        return json_response({"instances": [self.status_of(i) for i in self.instances.values()]})

    def on_instance(self, request, payload, name):
        inst = self.inst(name)
        row = self.status_of(inst)
        row.update(driver=inst.get("driver", "process"), image=inst.get("image"))
        return json_response(row)

    def on_action(self, request, payload, name, action):
        inst = self.inst(name)
        with self.locks[name]:
            getattr(self.driver(inst), action)(inst)
            if action != "stop":
                self.wait_healthy(inst)
        return json_response(self.status_of(inst))

    def wait_healthy(self, inst, timeout=120):
        url = inst.get("health_url")
        if not url:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 - URL from the config file
                    if resp.status == 200:
                        return
            time.sleep(0.3)
        raise DriverError(f"{inst['name']} not healthy after {timeout}s")

    def on_logs(self, request, payload, name):
        inst = self.inst(name)
        lines = max(1, min(MAX_LINES, int(request.args.get("lines", 100))))
        grep = request.args.get("grep") or None
        driver = self.driver(inst)
        if request.args.get("follow") in ("1", "true"):
            seconds = max(1, min(300, int(request.args.get("seconds", 30))))

            def stream():
                for line in driver.follow(inst, grep, seconds):
                    yield (line + "\n").encode()

            return Response(stream(), mimetype="text/plain", direct_passthrough=True)
        return json_response({"lines": driver.logs(inst, lines, grep)})

    def on_backup(self, request, payload, name):
        inst = self.inst(name)
        with self.locks[name]:
            return json_response(self.backups.backup(inst, payload.get("format", "custom"),
                                                     bool(payload.get("filestore"))))

    def on_backups(self, request, payload, name):
        age = request.args.get("max_age_days")
        return json_response({"backups": self.backups.list(self.inst(name), float(age) if age else None)})

    def on_restore(self, request, payload, name):
        inst = self.inst(name)
        with self.locks[name]:
            result = self.backups.restore(inst, payload.get("backup"), self.driver(inst))
            if result.get("restarted"):
                try:
                    self.wait_healthy(inst)
                except DriverError as exc:
                    result["health"] = str(exc)
        return json_response(result, 200 if result["restored"] else 500)

    def on_disk(self, request, payload):
        usage = shutil.disk_usage(self.backups.dir)
        used = sum(p.stat().st_size for p in self.backups.dir.rglob("*") if p.is_file())
        return json_response({"total": usage.total, "used": usage.used, "free": usage.free, "backups_bytes": used})

    # -- heartbeat ---------------------------------------------------------------------------

    def heartbeat_once(self):
        url = self.config.get("control_plane_url")
        if not url:
            return None
        path = "/ocore/control/heartbeat"
        body = json.dumps(self.status()).encode()
        headers = signing.sign(self.secret, "POST", path, body)
        headers.update({"Content-Type": "application/json", signing.HEADER_SERVER: str(self.config["server_id"])})
        req = urllib.request.Request(url.rstrip("/") + path, data=body, headers=headers, method="POST")  # noqa: S310
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - URL from the config file
            return resp.status

    def heartbeat_loop(self, stop):
        every = float(self.config.get("heartbeat_seconds") or 30)
        while not stop.wait(every):
            try:
                self.heartbeat_once()
            except OSError as exc:
                _logger.warning("heartbeat to the control plane failed: %s", exc)


def json_response(data, status=200):
    return Response(json.dumps(data, default=str), status=status, mimetype="application/json")


def load_config(path):
    with open(path) as fh:
        config = json.load(fh)
    for required in ("secret", "listen", "backup_dir"):
        if not config.get(required):
            raise SystemExit(f"{path}: {required!r} is required")
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ocore_control.agent", description="oCore host agent")
    parser.add_argument("--config", "-c", required=True, help="JSON configuration file")
    parser.add_argument("--autostart", action="store_true", help="start the configured instances at launch")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    agent = Agent(config)
    host, _sep, port = config["listen"].rpartition(":")
    server = make_server(host or "127.0.0.1", int(port), agent, threaded=True)
    stop = threading.Event()
    threading.Thread(target=agent.heartbeat_loop, args=(stop,), daemon=True, name="heartbeat").start()
    if args.autostart:
        for inst in agent.instances.values():
            agent.driver(inst).start(inst)
    _logger.info("ocore agent listening on %s:%s (%d instances)", host, server.port, len(agent.instances))
    signal.signal(signal.SIGTERM, lambda *_a: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    finally:
        stop.set()
        server.server_close()
