"""What the control plane's Odoo tests share: a local HTTP server standing for an instance or a host agent, its
JSON answer, and an organization with one member, one enrolled instance and the member's organization key."""

import json
import threading
from http.server import ThreadingHTTPServer

from odoo import Command

from odoo.addons.ocore_mcp.lib import compat


def send_json(handler, payload):
    """Answer ``payload`` as JSON (status 200, with its Content-Length) from a ``BaseHTTPRequestHandler``."""
    body = json.dumps(payload).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class LocalServer:
    """A request handler class served on a free local port by a thread of its own (``address``, ``url``)."""

    def serve(self, handler, server_class=ThreadingHTTPServer):
        self.server = server_class(("127.0.0.1", 0), handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.address}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def member_with_instance(env, tag, url):
    """User ``alice_<tag>_ctl`` (an MCP user), owner of the organization "<Tag> agency", its instance
    ``remote_<tag>`` at ``url``, enrolled (its credential active, as the enrolment would leave it, without
    contacting it), and her organization key "<tag> key": (user, organization, instance, key)."""
    users = env["res.users"].with_context(no_reset_password=True)
    user = users.create({"name": "Alice", "login": f"alice_{tag}_ctl", compat.user_groups_field(users): [
        Command.set([env.ref("base.group_user").id, env.ref("ocore_mcp.group_mcp_user").id])]})
    org = env["ocore.control.organization"].create({
        "name": f"{tag.capitalize()} agency", "member_ids": [Command.create({"user_id": user.id, "role": "owner"})]})
    instance = env["ocore.control.instance"].create({
        "name": "Remote", "slug": f"remote_{tag}", "organization_id": org.id, "environment": "staging",
        "url": url, "status": "running"})
    instance.write({"credential_generation": 1, "credential_state": "active"})
    key, _secret = env["ocore.mcp.key"]._ocore_create_key(f"{tag} key", user, organization_id=org.id)
    return user, org, instance, key
