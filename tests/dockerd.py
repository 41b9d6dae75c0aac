"""A real Docker daemon for the agent's Docker driver, in restricted mode (no iptables rules, no bridge:
the host's networking is left alone), with everything under tests/artifacts; and an image made with
``docker import`` of a tiny root filesystem built here (busybox-static)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from harness import ARTIFACTS, HarnessError, stop_process_group, tail

BUSYBOX = Path("/bin/busybox")
IMAGE = "ocore-e2e-busybox:1"


class Dockerd:
    def __init__(self):
        self.dir = ARTIFACTS / f"dockerd-{int(time.time())}-{os.getpid()}"
        self.sock = self.dir / "docker.sock"
        self.base_url = f"unix://{self.sock}"
        self.log = self.dir / "dockerd.log"
        self.proc = None
        self.client = None

    def start(self, timeout=30):
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout):
        dockerd = shutil.which("dockerd")
        if not dockerd:
            raise HarnessError("dockerd not found: setup/test installs the Debian package docker.io")
        self.dir.mkdir(parents=True)
        import docker  # noqa: F401 - the SDK first: no daemon left running without it

        cmd = [dockerd, "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
               "--pidfile", str(self.dir / "docker.pid"), "-H", self.base_url, "--iptables=false",
               "--ip6tables=false", "--bridge=none", "--ip-masq=false"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"dockerd exited ({self.proc.returncode}):\n{tail(self.log)}")
            if self.sock.exists():
                try:
                    self.client = sys.modules["docker"].DockerClient(base_url=self.base_url)
                    self.client.ping()
                    return self
                except Exception:  # noqa: BLE001, S110 - not ready yet
                    pass
            time.sleep(0.2)
        raise HarnessError(f"dockerd not ready after {timeout}s:\n{tail(self.log)}")

    def import_busybox(self):
        """``docker import`` of a root filesystem with busybox and a /www/web/health page."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name in ("bin", "www", "www/web", "tmp"):
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            tar.add(str(BUSYBOX), arcname="bin/busybox")
            for tool in ("sh", "httpd", "sleep", "echo"):
                info = tarfile.TarInfo(f"bin/{tool}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
            page = b'{"status": "pass"}\n'
            info = tarfile.TarInfo("www/web/health")
            info.size, info.mode = len(page), 0o644
            tar.addfile(info, io.BytesIO(page))
        self.client.api.import_image_from_data(buf.getvalue(), repository=IMAGE.split(":")[0], tag=IMAGE.split(":")[1])
        return IMAGE

    def stop(self):
        if self.client is not None:
            for container in self.client.containers.list(all=True):
                container.remove(force=True)
            self.client.close()
        if self.proc is not None:
            stop_process_group(self.proc, 20)
        self.unmount()
        shutil.rmtree(self.dir / "data", ignore_errors=True)

    def mounts(self):
        """The mount points dockerd left under its directories (e.g. the nsfs of exec/netns/default)."""
        root = str(self.dir.resolve()) + "/"
        points = []
        with open("/proc/self/mountinfo", encoding="utf-8") as info:
            for line in info:
                point = line.split()[4].encode().decode("unicode_escape")  # octal escapes (\040 = space)
                if point.startswith(root):
                    points.append(point)
        return sorted(points, key=len, reverse=True)  # the deepest first

    def unmount(self):
        for point in self.mounts():
            done = subprocess.run(["umount", point], capture_output=True, check=False)
            if done.returncode:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
