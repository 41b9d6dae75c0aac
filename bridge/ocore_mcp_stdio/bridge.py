"""ocore-mcp-stdio: an MCP server over stdio that relays every message to an oCore MCP server's Streamable
HTTP endpoint.

Each line on stdin is one JSON-RPC message (the stdio transport); each is POSTed to the endpoint and every
message of the answer (JSON or an SSE stream) is written to stdout, one per line. Every revision passes
through unchanged: the handshake revisions (2024-11-05 … 2025-11-25) get the session the server opened on
``initialize`` (``Mcp-Session-Id``) and the negotiated ``MCP-Protocol-Version``; a 2026-07-28 request gets
the headers its envelope calls for (``MCP-Protocol-Version``, ``Mcp-Method``, ``Mcp-Name``). Every request
carries ``X-Ocore-Transport: stdio``: the server applies the stdio transport's rate limit to it unless the
key sets its own.

Credentials: ``--key`` / ``OCORE_MCP_KEY``; without a key, the OAuth device flow of the server (the
``ocore_mcp_oauth`` addon): the code and the page to confirm it on are written to stderr, the tokens are
kept in a file readable by the user only and refreshed when they expire.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .wire import protocol

__version__ = "1.0.0"

BRIDGE_HEADER = "X-Ocore-Transport"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")
_B64_SENTINEL = re.compile(r"=\?base64\?(.*)\?=")


class BridgeError(Exception):
    pass


def encode_header_value(value: str) -> str:
    """The SDK's header encoding, inverse of ``protocol.decode_header_value``: printable ASCII as is,
    anything else in the ``=?base64?…?=`` sentinel."""
    if _HEADER_SAFE.fullmatch(value) and value == value.strip() and not _B64_SENTINEL.fullmatch(value):
        return value
    return f"=?base64?{base64.b64encode(value.encode('utf-8')).decode('ascii')}?="


def _http_request(url: str, **kw) -> urllib.request.Request:
    """A request to an http(s) URL only (the endpoint, and the OAuth endpoints the server's metadata names)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise BridgeError(f"not an http(s) URL: {url!r}")
    return urllib.request.Request(url, **kw)  # noqa: S310 (scheme checked above)


def endpoint_of(url: str) -> str:
    """The Streamable HTTP endpoint: a bare server URL gets ``/ocore/mcp/stream``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BridgeError(f"not an http(s) URL: {url!r}")
    if parts.path in ("", "/"):
        parts = parts._replace(path="/ocore/mcp/stream")
    return urllib.parse.urlunsplit(parts)


# -- OAuth device flow -----------------------------------------------------------------------------------------


class DeviceAuth:
    """Bearer tokens from the server's OAuth device flow, kept in ``token_file`` (mode 0600)."""

    def __init__(self, endpoint: str, token_file: Path, log=None, timeout: float = 30):
        parts = urllib.parse.urlsplit(endpoint)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.resource = endpoint
        self.token_file = token_file
        self.timeout = timeout
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.lock = threading.Lock()
        self.state = self._load()

    # storage
    def _load(self) -> dict:
        try:
            return json.loads(self.token_file.read_text()).get(self.resource) or {}
        except (OSError, ValueError, AttributeError):
            return {}

    def _save(self):
        try:
            stored = json.loads(self.token_file.read_text())
        except (OSError, ValueError):
            stored = {}
        stored[self.resource] = self.state
        self.token_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.token_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
        os.replace(tmp, self.token_file)

    # HTTP
    def _post_form(self, url: str, data: dict) -> tuple[int, dict]:
        req = _http_request(url, data=urllib.parse.urlencode(data).encode(), method="POST",
                                     headers={"Accept": "application/json"})
        return _json_call(req, self.timeout)

    def _metadata(self) -> dict:
        req = _http_request(f"{self.origin}/.well-known/oauth-authorization-server",
                                     headers={"Accept": "application/json"})
        status, body = _json_call(req, self.timeout)
        if status != 200 or not body.get("device_authorization_endpoint"):
            raise BridgeError(f"{self.origin} offers no OAuth device flow (is ocore_mcp_oauth installed?); "
                              "give an API key with --key or OCORE_MCP_KEY")
        return body

    def _register(self, meta: dict) -> str:
        body = json.dumps({"client_name": "ocore-mcp-stdio", "redirect_uris": [],
                           "grant_types": [DEVICE_GRANT, "refresh_token"],
                           "token_endpoint_auth_method": "none"}).encode()
        req = _http_request(meta["registration_endpoint"], data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        status, info = _json_call(req, self.timeout)
        if status not in (200, 201) or "client_id" not in info:
            raise BridgeError(f"client registration refused: {info}")
        return info["client_id"]

    # tokens
    def token(self) -> str:
        with self.lock:
            if not self.state.get("access_token"):
                self._device_flow()
            return self.state["access_token"]

    def refresh(self, used: str) -> bool:
        """A new access token after a 401 with ``used``; False when there is none to get."""
        with self.lock:
            if self.state.get("access_token") != used:
                return True  # another thread refreshed already
            if self.state.get("refresh_token"):
                status, body = self._post_form(self.state["token_endpoint"], {
                    "grant_type": "refresh_token", "refresh_token": self.state["refresh_token"],
                    "client_id": self.state["client_id"], "resource": self.resource})
                if status == 200 and body.get("access_token"):
                    self.state.update(access_token=body["access_token"],
                                      refresh_token=body.get("refresh_token") or self.state["refresh_token"])
                    self._save()
                    return True
            self.state.pop("access_token", None)
            self.state.pop("refresh_token", None)
            self._device_flow()
            return True

    def _device_flow(self):
        meta = self._metadata()
        client_id = self.state.get("client_id") or self._register(meta)
        status, start = self._post_form(meta["device_authorization_endpoint"], {
            "client_id": client_id, "scope": "mcp offline_access", "resource": self.resource})
        if status != 200:
            raise BridgeError(f"device authorization refused: {start}")
        page = start.get("verification_uri_complete") or start["verification_uri"]
        self.log(f"ocore-mcp-stdio: to connect, open {page}"
                 f"\nand confirm the code {start['user_code']} (valid {start.get('expires_in', 900) // 60} minutes)")
        if start.get("qr_code"):
            self.log(start["qr_code"])
        interval = int(start.get("interval") or 5)
        deadline = time.monotonic() + int(start.get("expires_in") or 900)
        while time.monotonic() < deadline:
            time.sleep(interval)
            status, body = self._post_form(meta["token_endpoint"], {
                "grant_type": DEVICE_GRANT, "device_code": start["device_code"], "client_id": client_id})
            if status == 200 and body.get("access_token"):
                self.state = {"client_id": client_id, "token_endpoint": meta["token_endpoint"],
                              "access_token": body["access_token"], "refresh_token": body.get("refresh_token")}
                self._save()
                self.log("ocore-mcp-stdio: connected")
                return
            error = body.get("error")
            if error == "slow_down":
                interval += 5
            elif error != "authorization_pending":
                raise BridgeError(f"device authorization failed: {error or body}")
        raise BridgeError("device authorization expired before it was confirmed")


def _json_call(req, timeout) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http(s) checked by endpoint_of)
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}
    except (OSError, ValueError) as exc:
        raise BridgeError(f"{req.full_url}: {exc}") from None


# -- the relay -------------------------------------------------------------------------------------------------


class Bridge:
    def __init__(self, endpoint: str, key: str | None = None, auth: DeviceAuth | None = None,
                 out=None, timeout: float = 300):
        self.endpoint = endpoint
        self.key = key
        self.auth = auth
        self.out = out or sys.stdout
        self.timeout = timeout
        self.write_lock = threading.Lock()
        self.session_id: str | None = None
        self.version: str | None = None  # negotiated on initialize (handshake revisions)
        self.workers: list[threading.Thread] = []

    def write(self, message):
        text = protocol.message_text(message)
        with self.write_lock:
            self.out.write(text + "\n")
            self.out.flush()

    def headers_for(self, msg: dict) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                   BRIDGE_HEADER: "stdio", "User-Agent": f"ocore-mcp-stdio/{__version__}"}
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
        modern_version = meta.get(protocol.PROTOCOL_VERSION_META_KEY)
        if isinstance(modern_version, str) and "method" in msg:
            # a 2026-07-28 request: the headers mirror its envelope, no session
            headers[protocol.HEADER_PROTOCOL_VERSION] = modern_version
            headers[protocol.HEADER_METHOD] = msg["method"]
            name_key = protocol.NAME_BEARING_METHODS.get(msg["method"])
            if name_key and isinstance(params.get(name_key), str):
                headers[protocol.HEADER_NAME] = encode_header_value(params[name_key])
        else:
            if self.session_id:
                headers[protocol.HEADER_SESSION] = self.session_id
            if self.version:
                headers[protocol.HEADER_PROTOCOL_VERSION] = self.version
        return headers

    def _open(self, msg: dict, body: bytes):
        for attempt in (0, 1):
            headers = self.headers_for(msg)
            token = self.key or (self.auth.token() if self.auth else None)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            req = _http_request(self.endpoint, data=body, method="POST", headers=headers)
            try:
                return urllib.request.urlopen(req, timeout=self.timeout)  # noqa: S310
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and attempt == 0 and self.auth and not self.key and self.auth.refresh(token):
                    exc.close()
                    continue
                return exc
        raise AssertionError("unreachable")

    def relay(self, msg: dict):
        kind = protocol.message_kind(msg)
        request_id = msg.get("id") if kind == "request" else None
        try:
            resp = self._open(msg, protocol.dumps(msg).encode())
        except (OSError, BridgeError) as exc:
            if kind == "request":
                self.write(protocol.error(request_id, protocol.INTERNAL_ERROR, f"ocore-mcp-stdio: {exc}"))
            else:
                print(f"ocore-mcp-stdio: {exc}", file=sys.stderr, flush=True)
            return
        with resp:
            status = resp.status if hasattr(resp, "status") else resp.code
            if msg.get("method") == "initialize" and status == 200:
                self.session_id = resp.headers.get(protocol.HEADER_SESSION) or self.session_id
            ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype == "text/event-stream":
                self._relay_events(resp, msg)
                return
            raw = resp.read()
            if not raw.strip():
                if kind == "request":  # an empty answer to a request: tell the client instead of letting it wait
                    self.write(protocol.error(request_id, protocol.INTERNAL_ERROR,
                                              f"ocore-mcp-stdio: HTTP {status} without a body"))
                elif status >= 400:
                    print(f"ocore-mcp-stdio: HTTP {status} for a {kind}", file=sys.stderr, flush=True)
                return
            try:
                answer = json.loads(raw)
            except ValueError:
                if kind == "request":
                    self.write(protocol.error(request_id, protocol.INTERNAL_ERROR,
                                              f"ocore-mcp-stdio: HTTP {status}: {raw[:200].decode(errors='replace')}"))
                return
            for item in answer if isinstance(answer, list) else [answer]:
                self._deliver(item, msg)

    def _relay_events(self, resp, msg):
        data: list[str] = []
        for raw_line in resp:
            line = raw_line.decode("utf-8").rstrip("\r\n")
            if line.startswith("data:"):
                data.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
            elif not line and data:
                text = "\n".join(data)
                data = []
                try:
                    item = json.loads(text)
                except ValueError:
                    continue
                self._deliver(item, msg)
        if data:
            try:
                self._deliver(json.loads("\n".join(data)), msg)
            except ValueError:
                pass

    def _deliver(self, item, msg):
        if (msg.get("method") == "initialize" and isinstance(item, dict) and item.get("id") == msg.get("id")
                and isinstance(item.get("result"), dict)):
            self.version = item["result"].get("protocolVersion") or self.version
        self.write(item)

    def handle_line(self, line: str):
        if not line.strip():
            return
        try:
            msg = protocol.decode_body(line)
        except protocol.ProtocolError as exc:
            self.write(protocol.error(None, exc.code, exc.message))
            return
        if not isinstance(msg, dict) or protocol.message_kind(msg) is None:
            self.write(protocol.error(msg.get("id") if isinstance(msg, dict) else None, protocol.INVALID_REQUEST,
                                      "Invalid Request"))
            return
        if msg.get("method") == "initialize":
            self.relay(msg)  # the session must exist before the next message goes out
            return
        worker = threading.Thread(target=self.relay, args=(msg,), daemon=True)
        worker.start()
        self.workers = [w for w in self.workers if w.is_alive()] + [worker]

    def close(self):
        for worker in self.workers:
            worker.join(timeout=self.timeout)
        if self.session_id:
            headers = {protocol.HEADER_SESSION: self.session_id, BRIDGE_HEADER: "stdio"}
            if self.version:
                headers[protocol.HEADER_PROTOCOL_VERSION] = self.version
            token = self.key or (self.auth.state.get("access_token") if self.auth else None)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            req = _http_request(self.endpoint, method="DELETE", headers=headers)
            try:
                urllib.request.urlopen(req, timeout=10).close()  # noqa: S310
            except (OSError, urllib.error.HTTPError):
                pass

    def run(self, stdin=None):
        stdin = stdin or sys.stdin
        for line in stdin:
            self.handle_line(line)
        self.close()


def default_token_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "ocore-mcp-stdio" / "tokens.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="ocore-mcp-stdio",
        description="An MCP server over stdio relaying to an oCore MCP server (Streamable HTTP). Without a "
                    "key, it connects through the server's OAuth device flow.")
    parser.add_argument("url", nargs="?", default=os.environ.get("OCORE_MCP_URL"),
                        help="the server's MCP endpoint or its base URL (env OCORE_MCP_URL), "
                             "e.g. https://odoo.example.com/ocore/mcp/stream")
    parser.add_argument("--key", default=os.environ.get("OCORE_MCP_KEY"),
                        help="an oCore MCP API key (env OCORE_MCP_KEY); without one: OAuth device flow")
    parser.add_argument("--token-file", type=Path, default=None,
                        help="where the OAuth tokens are kept (default ~/.config/ocore-mcp-stdio/tokens.json)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one request may take (default 300)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("the server URL is required (argument or OCORE_MCP_URL)")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        endpoint = endpoint_of(args.url)
    except BridgeError as exc:
        print(f"ocore-mcp-stdio: {exc}", file=sys.stderr)
        return 2
    auth = None if args.key else DeviceAuth(endpoint, args.token_file or default_token_file())
    stdout = open(sys.stdout.fileno(), "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    stdin = open(sys.stdin.fileno(), encoding="utf-8", closefd=False)  # noqa: SIM115
    Bridge(endpoint, key=args.key, auth=auth, out=stdout, timeout=args.timeout).run(stdin)
    return 0
