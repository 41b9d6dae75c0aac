"""How the agent runs instances: one interface, two drivers (a local process it started, a Docker
container through the Engine API)."""

import contextlib
import os
import re
import signal
import subprocess
import time
from collections import deque
from pathlib import Path

MAX_LINES = 1000


class DriverError(Exception):
    pass


def filtered(lines, grep):
    if not grep:
        return list(lines)
    pattern = re.compile(grep, re.IGNORECASE) if _is_regex(grep) else None
    return [line for line in lines if (pattern.search(line) if pattern else grep.lower() in line.lower())]


def _is_regex(text):
    try:
        re.compile(text)
    except re.error:
        return False
    return True


class Driver:
    """What the agent does with one instance (``inst``: its configuration dict)."""

    def status(self, inst) -> dict:
        raise NotImplementedError

    def start(self, inst):
        raise NotImplementedError

    def stop(self, inst, timeout=20):
        raise NotImplementedError

    def restart(self, inst):
        self.stop(inst)
        self.start(inst)

    def logs(self, inst, lines=100, grep=None) -> list:
        raise NotImplementedError

    def follow(self, inst, grep=None, seconds=10):
        """New log lines as they come, for ``seconds`` (a generator)."""
        raise NotImplementedError


class ProcessDriver(Driver):
    """An Odoo server process the agent starts itself (its own process group), output to a log file;
    its pid is kept in the agent's state directory so that a restarted agent finds it again."""

    def __init__(self, state_dir):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.procs = {}

    def _pid_file(self, inst):
        return self.state_dir / f"{inst['name']}.pid"

    def _log_file(self, inst):
        return Path(inst.get("log_file") or self.state_dir / f"{inst['name']}.log")

    def _pid(self, inst):
        proc = self.procs.get(inst["name"])
        if proc is not None:
            return proc.pid if proc.poll() is None else None
        try:
            pid = int(self._pid_file(inst).read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def status(self, inst):
        pid = self._pid(inst)
        return {"name": inst["name"], "driver": "process", "status": "running" if pid else "stopped", "id": pid}

    def start(self, inst):
        if self._pid(inst):
            return
        log = open(self._log_file(inst), "ab")  # noqa: SIM115 - handed to the child
        env = {**os.environ, **(inst.get("environment") or {})}
        proc = subprocess.Popen(inst["command"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # noqa: S603
                                cwd=inst.get("cwd") or None, env=env)
        log.close()
        self.procs[inst["name"]] = proc
        self._pid_file(inst).write_text(str(proc.pid))

    def stop(self, inst, timeout=20):
        pid = self._pid(inst)
        if not pid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        proc = self.procs.get(inst["name"])
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                break
            if proc is None:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            if proc is not None:
                proc.wait(10)
        self.procs.pop(inst["name"], None)
        self._pid_file(inst).unlink(missing_ok=True)

    def logs(self, inst, lines=100, grep=None):
        path = self._log_file(inst)
        if not path.exists():
            return []
        with open(path, errors="replace") as fh:
            if not grep:
                return [line.rstrip("\n") for line in deque(fh, maxlen=lines)]
            return filtered((line.rstrip("\n") for line in fh), grep)[-lines:]

    def follow(self, inst, grep=None, seconds=10):
        path = self._log_file(inst)
        deadline = time.monotonic() + seconds
        with open(path, errors="replace") as fh:
            fh.seek(0, os.SEEK_END)
            while time.monotonic() < deadline:
                line = fh.readline()
                if not line:
                    time.sleep(0.2)
                    continue
                if filtered([line], grep):
                    yield line.rstrip("\n")


class DockerDriver(Driver):
    """A container per instance, through the Docker Engine API (the ``docker`` SDK)."""

    def __init__(self, base_url=None):
        import docker

        self.client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
        self.errors = docker.errors

    def _container(self, inst):
        try:
            return self.client.containers.get(inst.get("container_name") or f"ocore-{inst['name']}")
        except self.errors.NotFound:
            return None

    def status(self, inst):
        container = self._container(inst)
        if container is None:
            return {"name": inst["name"], "driver": "docker", "status": "stopped", "id": None}
        container.reload()
        state = "running" if container.status == "running" else "stopped"
        return {"name": inst["name"], "driver": "docker", "status": state, "id": container.id[:12],
                "container_status": container.status}

    def start(self, inst):
        container = self._container(inst)
        if container is not None:
            container.start()
            return
        self.client.containers.run(
            inst["image"], inst.get("command"), name=inst.get("container_name") or f"ocore-{inst['name']}",
            detach=True, network_mode=inst.get("network_mode", "host"), environment=inst.get("environment") or {},
            volumes=inst.get("volumes") or {}, labels={"ocore.instance": inst["name"]})

    def stop(self, inst, timeout=20):
        container = self._container(inst)
        if container is not None and container.status != "exited":
            container.stop(timeout=timeout)

    def logs(self, inst, lines=100, grep=None):
        container = self._container(inst)
        if container is None:
            return []
        tail = lines if not grep else MAX_LINES * 10
        text = container.logs(tail=tail).decode(errors="replace")
        return filtered(text.splitlines(), grep)[-lines:]

    def follow(self, inst, grep=None, seconds=10):
        container = self._container(inst)
        if container is None:
            return
        deadline = time.time() + seconds
        stream = container.logs(stream=True, follow=True, since=int(time.time()), until=int(deadline) + 1)
        buffer = b""
        for chunk in stream:
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                text = line.decode(errors="replace")
                if filtered([text], grep):
                    yield text
            if time.time() > deadline:
                break
