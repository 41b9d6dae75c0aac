"""nginx as the reverse proxy in front of a prefork server, with the repository's own configuration."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .config import ARTIFACTS, REPO, HarnessError, free_port, tail
from .server import OdooServer, stop_process_group

# -- the reverse proxy ------------------------------------------------------------------------

NGINX_TEMPLATE = REPO / "deploy" / "nginx" / "ocore-mcp.conf"


class NginxProxy:
    """nginx in front of a prefork ``OdooServer``, with the repository's own proxy configuration
    (``deploy/nginx/ocore-mcp.conf``, what admins copy): only the upstream addresses and the listen
    line are replaced. Everything it writes (configuration, logs, pid, temp files) is under
    ``tests/artifacts``; nginx runs in the foreground as a child of the tests."""

    def __init__(self, server: OdooServer, nginx_bin: str | None = None):
        if server.gevent_port is None:
            raise HarnessError("the proxy needs a prefork server (HTTP workers and a gevent port)")
        self.server = server
        self.nginx = nginx_bin or shutil.which("nginx") or "/usr/sbin/nginx"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = ARTIFACTS / f"nginx-{server.db}-{self.port}"
        self.conf_path = self.dir / "nginx.conf"
        self.error_log = self.dir / "error.log"
        self.access_log = self.dir / "access.log"
        self.proc: subprocess.Popen | None = None

    def render(self) -> str:
        """The site configuration: the template with this server's ports."""
        text = NGINX_TEMPLATE.read_text()
        for old, new in (("127.0.0.1:8069;", f"127.0.0.1:{self.server.port};"),
                         ("127.0.0.1:8072;", f"127.0.0.1:{self.server.gevent_port};"),
                         ("listen 80;", f"listen 127.0.0.1:{self.port};")):
            if text.count(old) != 1:
                raise HarnessError(f"{NGINX_TEMPLATE.name}: expected exactly one {old!r} to replace")
            text = text.replace(old, new)
        return text

    def write_config(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "ocore-mcp.conf").write_text(self.render())
        temp = {name: self.dir / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir(exist_ok=True)
        self.conf_path.write_text(f"""worker_processes 1;
error_log {self.error_log} info;
events {{ worker_connections 512; }}
http {{
    log_format ocore_upstream '$request_method $uri $status upstream=$upstream_addr';
    access_log {self.access_log} ocore_upstream;
    client_body_temp_path {temp["client_body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {self.dir / "ocore-mcp.conf"};
}}
""")

    def command(self) -> list[str]:
        return [self.nginx, "-p", str(self.dir), "-c", str(self.conf_path),
                "-g", f"daemon off; pid {self.dir / 'nginx.pid'};"]

    def start(self, timeout: float = 20):
        if not Path(self.nginx).exists():
            raise HarnessError(f"nginx not found ({self.nginx}); setup/test installs the Debian package")
        self.write_config()
        log = open(self.dir / "stderr.log", "wb")  # noqa: SIM115 - kept by the child
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"nginx exited with code {self.proc.returncode}:\n{tail(self.dir / 'stderr.log')}"
                                   f"\n{tail(self.error_log)}")
            try:
                with urllib.request.urlopen(f"{self.url}/web/health", timeout=5) as resp:  # noqa: S310
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise HarnessError(f"nginx on {self.url} did not answer within {timeout}s:\n{tail(self.error_log)}")

    def stop(self, timeout: float = 10):
        if self.proc is not None:
            stop_process_group(self.proc, timeout)

    def access_log_lines(self) -> list[str]:
        try:
            return self.access_log.read_text(errors="replace").splitlines()
        except OSError:
            return []
