"""Human confirmation across the control plane's hop (models/mcp_server.py, ``_ocore_control_elicitation`` and
``_ocore_control_input_required``), against an HTTP server that answers as an ocore_mcp instance does for a
destructive call: an InputRequiredResult to a request that declares elicitation, the outcome to the retry that
answers it, "call again with confirm: true" to one that does not.

The control plane forwards only the elicitation its client declared (a 2025 session's only with the call's stream
to ask on), relays a 2026-07-28 client's answers and the instance's sealed state as they are, asks a 2025 session
itself on the call's stream and forwards its answer (a decline too), and audits the confirmation as an instance
does; a client that did not declare elicitation is never asked."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mcp_types

from odoo.tests import TransactionCase, tagged

from odoo.addons.ocore_mcp.lib.errors import ProtocolError
from odoo.addons.ocore_mcp.service.context import Connection
from odoo.addons.ocore_mcp.service.notify import hub

from ..models import mcp_server as control_server
from .common import LocalServer, member_with_instance, send_json

CAPS_META = "io.modelcontextprotocol/clientCapabilities"
STATE = "v1.sealed-by-the-instance.signature"
QUESTION = {"mode": "form", "message": "The AI client asks to run the destructive tool remote_elicit_unlink",
            "requestedSchema": {"type": "object", "properties": {"confirm": {"type": "boolean"}},
                                "required": ["confirm"]}}
# the question as the control plane relays it: rebuilt from what it checked, the message saying which instance asks
RELAYED = {"mode": "form", "message": "[instance remote_elicit, through the control plane] " + QUESTION["message"],
           "requestedSchema": {"type": "object", "properties": {"confirm": {"type": "boolean", "default": False}},
                               "required": ["confirm"]}}
ASKED = {"resultType": "input_required",
         "inputRequests": {"confirm": {"method": "elicitation/create", "params": QUESTION}},
         "requestState": STATE}


class _Instance(LocalServer):
    """An HTTP server answering a destructive tools/call as an instance does; it keeps the requests it got."""

    def __init__(self):
        self.requests = []
        self.asked = ASKED  # what it answers a request that declares elicitation (a malicious one: anything)
        self.connections = 0
        self.always_ask = False  # (a malicious one asks again whatever the answer)
        requests = self.requests
        instance = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                request["_assertion"] = (self.headers.get("Authorization") or "")[len("Bearer "):]
                requests.append(request)
                params = request["params"]
                caps = params["_meta"].get(CAPS_META) or {}
                answer = (params.get("inputResponses") or {}).get("confirm")
                if answer is not None and instance.always_ask:
                    result = ASKED
                elif answer is not None:
                    accepted = answer.get("action") == "accept" and (answer.get("content") or {}).get("confirm")
                    text = "done" if accepted else "the user declined the call: nothing was done"
                    result = {"content": [{"type": "text", "text": text}], "isError": not accepted}
                elif "elicitation" in caps or instance.asked is not ASKED:
                    result = instance.asked
                else:
                    result = {"content": [{"type": "text", "text": "'unlink' is destructive. Nothing was done. Call "
                                           "again with confirm: true to proceed."}], "isError": True}
                send_json(self, {"jsonrpc": "2.0", "id": request.get("id"), "result": result})

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            def verify_request(self, request, client_address):
                instance.connections += 1
                return True

        self.serve(Handler, Server)


class _Params:
    """The parsed params of a 2026-07-28 tools/call (what mcp-types gives the server)."""

    def __init__(self, input_responses=None, request_state=None):
        self.input_responses = input_responses
        self.request_state = request_state


@tagged("post_install", "-at_install")
class TestForwardElicitation(TransactionCase):
    NAME = "remote_elicit_unlink"

    def setUp(self):
        super().setUp()
        self.remote = _Instance()
        self.addCleanup(self.remote.close)
        env = self.env
        _user, _org, _instance, self.key = member_with_instance(env, "elicit", self.remote.url)
        self.server = env["ocore.mcp.server"]
        self.settings = self.server._ocore_settings()

    def modern(self, capabilities=None):
        return Connection(key=self.key, scope=None, settings=self.settings, transport="modern",
                          protocol_version="2026-07-28", client_capabilities=capabilities or {})

    def session(self, capabilities, answer=None):
        """A 2025 session with the call's stream: ``emit`` keeps what is sent and, for an elicitation/create,
        answers it as the client's response POST does (published to the waiting call)."""
        session = self.env["ocore.mcp.session"]._ocore_open(self.key.id, "stream", "127.0.0.1",
                                                            protocol_version="2025-06-18")
        sent = []

        def emit(message):
            sent.append(message)
            if answer is not None and message.get("method") == "elicitation/create":
                entry = (self.env.cr.dbname, session.session_id, json.dumps(message["id"]))
                hub._answers[entry].put(answer)  # what the NOTIFY of the client's response delivers

        conn = Connection(key=self.key, scope=None, settings=self.settings, transport="stream", session=session,
                          protocol_version="2025-06-18", client_capabilities=capabilities, emit=emit)
        return conn, sent

    def forward(self, conn, params=None, arguments=None):
        org = self.server._ocore_control_org_route(conn)
        route = self.server._ocore_control_route_of(org, self.NAME)
        return self.server._ocore_control_forward(conn, org, route, self.NAME, arguments or {"ids": [1]},
                                                  request_id=7, params=params)

    def rows(self):
        return self.env["ocore.mcp.audit.log"].sudo().search([("key_id", "=", self.key.id)], order="id")

    def sent_caps(self, index=-1):
        return self.remote.requests[index]["params"]["_meta"][CAPS_META]

    # -- 2026-07-28 ---------------------------------------------------------------------------------

    def test_modern_client_gets_the_instance_question_and_its_answer_is_relayed(self):
        conn = self.modern({"elicitation": {"form": {}}})
        first = self.forward(conn)
        self.assertEqual(first, {**ASKED, "inputRequests": {"confirm": {"method": "elicitation/create",
                                                                        "params": RELAYED}}},
                         "the instance's question (checked, rebuilt, the instance named) and its sealed state")
        self.assertEqual(self.sent_caps(), {"elicitation": {"form": {}}}, "only what the client declared")
        row = self.rows()[-1]
        self.assertEqual((row.status, row.refusal_reason), ("refused", "input_required"))
        answer = mcp_types.ElicitResult(action="accept", content={"confirm": True})
        retry = self.forward(conn, _Params({"confirm": answer}, STATE))
        self.assertFalse(retry["isError"], retry)
        sent = self.remote.requests[-1]["params"]
        self.assertEqual(sent["inputResponses"], {"confirm": {"action": "accept", "content": {"confirm": True}}})
        self.assertEqual(sent["requestState"], STATE, "the instance's sealed state, relayed as it came")
        row = self.rows()[-1]
        self.assertEqual((row.status, row.confirmation), ("success", "accepted (elicitation)"))
        self.assertEqual(len(self.rows()), 2, "one row per call of the client")

    def test_modern_decline_is_audited_as_declined(self):
        conn = self.modern({"elicitation": {}})
        result = self.forward(conn, _Params({"confirm": {"action": "decline"}}, STATE))
        self.assertTrue(result["isError"])
        row = self.rows()[-1]
        self.assertEqual((row.status, row.refusal_reason, row.confirmation),
                         ("refused", "confirmation_declined", "decline (elicitation)"))

    def test_modern_client_without_the_capability(self):
        result = self.forward(self.modern())
        self.assertIn("confirm: true", result["content"][0]["text"])
        self.assertEqual(self.sent_caps(), {}, "nothing declared, nothing forwarded")
        count = len(self.remote.requests)
        answer = {"confirm": {"action": "accept", "content": {"confirm": True}}}
        # (not assertRaises: Odoo's rolls its savepoint back, and the refused row with it)
        try:
            self.forward(self.modern(), _Params(answer, STATE))
            self.fail("an answer without the capability is refused")
        except ProtocolError as exc:
            self.assertEqual(exc.code, mcp_types.MISSING_REQUIRED_CLIENT_CAPABILITY)
        self.assertEqual(len(self.remote.requests), count, "an answer without the capability is not forwarded")
        self.assertEqual(self.rows()[-1].refusal_reason, "missing_capability")

    # -- 2025 sessions --------------------------------------------------------------------------------

    def test_session_is_asked_on_its_stream_and_the_answer_forwarded(self):
        conn, sent = self.session({"elicitation": {}}, {"action": "accept", "content": {"confirm": True}})
        result = self.forward(conn)
        self.assertFalse(result["isError"], result)
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0]["method"], "elicitation/create")
        # 2025-06-18 knows no modes: the instance's 2026-07-28 question without its "mode"
        self.assertEqual(sent[0]["params"], {k: v for k, v in RELAYED.items() if k != "mode"})
        first, second = self.remote.requests[-2:]
        self.assertEqual(first["params"]["_meta"][CAPS_META], {"elicitation": {"form": {}}})
        self.assertEqual(second["params"]["inputResponses"], {"confirm": {"action": "accept",
                                                                          "content": {"confirm": True}}})
        self.assertEqual(second["params"]["requestState"], STATE)
        self.assertEqual(first["id"], second["id"], "one correlation id for the call")
        rows = self.rows()
        self.assertEqual(len(rows), 1)
        self.assertEqual((rows.status, rows.confirmation, rows.request_id),
                         ("success", "accepted (elicitation)", first["id"]))

    def test_session_decline_runs_nothing_and_is_told_to_the_instance(self):
        conn, _sent = self.session({"elicitation": {"form": {}}}, {"action": "decline"})
        result = self.forward(conn)
        self.assertTrue(result["isError"])
        self.assertIn("declined", result["content"][0]["text"])
        self.assertEqual(self.remote.requests[-1]["params"]["inputResponses"], {"confirm": {"action": "decline"}})
        row = self.rows()[-1]
        self.assertEqual((row.status, row.refusal_reason, row.confirmation),
                         ("refused", "confirmation_declined", "decline (elicitation)"))

    def test_session_without_elicitation_is_not_asked(self):
        conn, sent = self.session({})
        result = self.forward(conn)
        self.assertIn("confirm: true", result["content"][0]["text"])
        self.assertEqual((sent, self.sent_caps()), ([], {}))
        self.assertFalse(self.env["ocore.mcp.approval"]._ocore_may_elicit(
            conn, {"method": "tools/call", "params": {"name": self.NAME, "arguments": {}}}))

    def test_session_answer_shape_follows_the_tool_schema(self):
        conn, _sent = self.session({"elicitation": {}})
        self.addCleanup(lambda: [control_server._MAY_CONFIRM.pop(n, None) for n in (self.NAME, "remote_elicit_write")])
        approval = self.env["ocore.mcp.approval"]
        message = {"method": "tools/call", "params": {"name": self.NAME, "arguments": {"ids": [1]}}}
        self.assertTrue(approval._ocore_may_elicit(conn, message), "a tool not listed yet may ask")
        control_server.note_tools([
            {"name": self.NAME, "inputSchema": {"type": "object", "properties": {"confirm": {"type": "boolean"}}}},
            {"name": "remote_elicit_write", "annotations": {"destructiveHint": True},
             "inputSchema": {"type": "object", "properties": {"dry_run": {"type": "boolean"}}}}])
        self.assertTrue(approval._ocore_may_elicit(conn, message))
        write = {"method": "tools/call", "params": {"name": "remote_elicit_write", "arguments": {}}}
        self.assertFalse(approval._ocore_may_elicit(conn, write), "a tool that never asks: no stream")
        dry = {"method": "tools/call", "params": {"name": self.NAME, "arguments": {"dry_run": True}}}
        self.assertFalse(approval._ocore_may_elicit(conn, dry))

    def test_session_timeout_and_cancellation_run_nothing(self):
        self.env["ir.config_parameter"].sudo().set_param("ocore_mcp.confirmation_timeout", "1")
        conn, sent = self.session({"elicitation": {}})  # nobody answers
        result = self.forward(conn)
        self.assertIn("no answer from the user within 1 s", result["content"][0]["text"])
        self.assertEqual(len(sent), 1)
        self.assertEqual(self.remote.requests[-1]["params"]["inputResponses"], {"confirm": {"action": "cancel"}},
                         "the instance is told, for its audit row")
        row = self.rows()[-1]
        self.assertEqual((row.status, row.refusal_reason, row.confirmation),
                         ("refused", "confirmation_declined", "timeout (elicitation)"))
        # notifications/cancelled of the call (JSON-RPC id 7) while it waits
        conn, sent = self.session({"elicitation": {}})
        emit = conn.emit

        def cancel(message):
            emit(message)
            hub._calls[(self.env.cr.dbname, conn.session_id, json.dumps(7))].cancel_now()

        conn.emit = cancel
        result = self.forward(conn)
        self.assertIn("cancelled by the client", result["content"][0]["text"])
        self.assertEqual(self.remote.requests[-1]["params"]["inputResponses"], {"confirm": {"action": "cancel"}})
        row = self.rows()[-1]
        self.assertEqual((row.status, row.refusal_reason, row.confirmation), ("refused", "cancelled", False))
