"""Human confirmation across the control plane's hop, with the official SDK client talking to the control plane
only: `<slug>_unlink` of a partner of a real instance asks the client as the instance asks its own clients (a
2025-11-25 session on Streamable HTTP and legacy SSE: elicitation/create on the call's stream, sent by the control
plane; 2026-07-28: the instance's InputRequiredResult relayed, the SDK's retry relayed back). Accepted: the partner
is gone and both audit rows of the call (control plane and instance, one correlation id) show the confirmation;
declined: nothing ran and both rows show the decline. A client that did not declare elicitation is not asked."""

from __future__ import annotations

import secrets

import anyio

import pytest
from control_fleet import control_fleet
from mcp_helpers import MODERN, TRANSPORT_IDS, TRANSPORTS, Raw, answering, connect, text_of
from mcp_types import ElicitResult

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(900)]

FIELDS = ["status", "refusal_reason", "confirmation", "request_id", "protocol_version", "tool_name"]


@pytest.fixture(scope="module")
def fleet(request, odoo_setup):
    # the control plane in the suite's mode (--odoo-mode=prefork: the client's answer may reach another worker
    # than the waiting call); the instance threaded
    with control_fleet(odoo_setup, count=1, keep=request.config.getoption("--keep-db"),
                       cp_mode=request.config.getoption("--odoo-mode")) as fleet:
        instance = fleet.instances[0]
        # the member's own user on the instance may delete partners there (as in Odoo: no more through MCP)
        admin = instance.admin
        admin.write("res.users", [instance.member_uid],
                    {admin.user_groups_field(): [(4, admin.ref("base.group_partner_manager"))]})
        yield fleet


def wait_row(admin, domain, predicate=lambda row: True, timeout=15):
    """The newest audit row matching ``domain`` and ``predicate`` (polled: rows complete after the answer)."""
    return admin.wait_audit(domain, predicate, timeout, fields=FIELDS)[0]


def cp_client(fleet, key, **kw):
    return connect(fleet.cp.url, key, stream_port=fleet.cp.gevent_port, **kw)


def partner(instance, label):
    return instance.admin.create("res.partner", {"name": f"E2E cp elicit {label} {secrets.token_hex(3)}"})


def exists(instance, pid):
    return bool(instance.admin.search_read("res.partner", [("id", "=", pid)], ["id"]))


def confirmed_rows(fleet, instance, key):
    """(control plane row, instance row) of the key's unlink call that carries a confirmation (same correlation
    id); polled: the control plane completes its row after its answer."""
    name = f"{instance.slug}_unlink"
    cp_row = wait_row(fleet.cp_admin, [("key_id", "=", key.id), ("tool_name", "=", name)],
                      lambda r: r["status"] != "running" and r["confirmation"])
    return cp_row, wait_row(instance.admin, [("request_id", "=", cp_row["request_id"]), ("tool_name", "=", name)],
                            lambda r: r["confirmation"])


@pytest.mark.parametrize("action", ["accept", "decline"])
@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_unlink_through_the_control_plane_asks_the_human(fleet, transport, mode, action):
    instance = fleet.instances[0]
    key = fleet.key()
    pid = partner(instance, action)
    seen = []
    async with cp_client(fleet, key, transport=transport, mode=mode,
                       elicitation_callback=answering(action, seen)) as client:
        # listed first: the control plane then knows the tool may ask (its schema declares confirm)
        assert f"{instance.slug}_unlink" in {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool(f"{instance.slug}_unlink", {"model": "res.partner", "ids": [pid]})
    assert len(seen) == 1, seen
    form = seen[0]
    assert form.requested_schema["properties"]["confirm"]["type"] == "boolean"
    assert f"{instance.slug}_unlink" in form.message and str(pid) in form.message
    cp_row, inst_row = confirmed_rows(fleet, instance, key)
    if action == "accept":
        assert not result.is_error, text_of(result)
        assert not exists(instance, pid)
        assert cp_row["status"] == inst_row["status"] == "success", (cp_row, inst_row)
        assert cp_row["confirmation"] == inst_row["confirmation"] == "accepted (elicitation)"
    else:
        assert result.is_error and "declined" in text_of(result) and "nothing was done" in text_of(result)
        assert exists(instance, pid)
        for row in (cp_row, inst_row):
            assert (row["status"], row["refusal_reason"], row["confirmation"]) == (
                "refused", "confirmation_declined", "decline (elicitation)"), row
    assert cp_row["protocol_version"] == (MODERN if mode == MODERN else "2025-11-25")
    if mode == MODERN:  # the first round trip: the InputRequiredResult, a refused row on both sides
        asked = wait_row(fleet.cp_admin, [("key_id", "=", key.id), ("refusal_reason", "=", "input_required")])
        assert asked["status"] == "refused"
        wait_row(instance.admin, [("request_id", "=", asked["request_id"]), ("refusal_reason", "=", "input_required")])


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_a_client_that_cannot_elicit_is_not_asked(fleet, transport, mode):
    instance = fleet.instances[0]
    key = fleet.key()
    pid = partner(instance, "no capability")
    async with cp_client(fleet, key, transport=transport, mode=mode) as client:
        result = await client.call_tool(f"{instance.slug}_unlink", {"model": "res.partner", "ids": [pid]})
    assert result.is_error and "Call again with confirm: true" in text_of(result), text_of(result)
    assert exists(instance, pid)
    row = wait_row(fleet.cp_admin, [("key_id", "=", key.id), ("tool_name", "=", f"{instance.slug}_unlink")],
                   lambda r: r["status"] != "running")
    assert not row["confirmation"]
    inst = wait_row(instance.admin, [("request_id", "=", row["request_id"])])
    assert (inst["refusal_reason"], inst["confirmation"]) == ("confirm_required", False), inst


async def test_instance_key_requiring_a_human(fleet):
    """The instance decides: its control key for the member requires a human confirmation. A client that can
    elicit is asked even with confirm: true; one that cannot gets the instance's pending approval, approved on
    the instance, after which the same call through the control plane runs once."""
    instance = fleet.instances[0]
    key = fleet.key()
    admin = instance.admin
    pid = partner(instance, "human")
    args = {"model": "res.partner", "ids": [pid], "confirm": True}
    seen = []
    async with cp_client(fleet, key, mode=MODERN, elicitation_callback=answering("decline", seen)) as client:
        await client.call_tool(f"{instance.slug}_count", {"model": "res.partner"})  # the control key exists now
        control_key = admin.search_read("ocore.mcp.key", [("user_id", "=", instance.member_uid),
                                                          ("control_link_id", "!=", False)], ["id"])[0]["id"]
        admin.write("ocore.mcp.key", [control_key], {"human_confirmation": True})
        try:
            declined = await client.call_tool(f"{instance.slug}_unlink", args)
            assert len(seen) == 1 and declined.is_error and exists(instance, pid), text_of(declined)
            async with cp_client(fleet, key) as plain:  # no elicitation declared
                first = await plain.call_tool(f"{instance.slug}_unlink", args)
                approvals = admin.search_read("ocore.mcp.approval", [("key_id", "=", control_key)], ["state"])
                assert len(approvals) == 1 and approvals[0]["state"] == "pending", approvals
                assert first.is_error and f"approval #{approvals[0]['id']}" in text_of(first)
                assert exists(instance, pid)
                admin.call("ocore.mcp.approval", "action_approve", [approvals[0]["id"]])
                second = await plain.call_tool(f"{instance.slug}_unlink", args)
            assert not second.is_error, text_of(second)
            assert not exists(instance, pid)
        finally:
            admin.write("ocore.mcp.key", [control_key], {"human_confirmation": False})
    row = wait_row(admin, [("key_id", "=", control_key), ("tool", "=", "unlink"), ("status", "=", "success")])
    assert row["confirmation"] == f"approval #{approvals[0]['id']}"


async def test_kill_switch_while_the_human_thinks(fleet):
    """The organization's kill switch turned on while a 2025 session's human is asked (by an admin of the control
    plane, on another connection; in prefork maybe another worker): the accepted call is not sent again to the
    instance, nothing runs, the control plane's row says mcp_disabled with the confirmation it got."""
    instance = fleet.instances[0]
    key = fleet.key()
    pid = partner(instance, "killswitch")
    seen = []

    async def accept_after_the_switch(context, params):
        seen.append(params)
        fleet.cp_admin.write("ocore.control.organization", [fleet.org_id], {"mcp_enabled": False})
        return ElicitResult(action="accept", content={"confirm": True})

    try:
        async with cp_client(fleet, key, elicitation_callback=accept_after_the_switch) as client:
            await client.list_tools()
            result = await client.call_tool(f"{instance.slug}_unlink", {"model": "res.partner", "ids": [pid]})
    finally:
        fleet.cp_admin.write("ocore.control.organization", [fleet.org_id], {"mcp_enabled": True})
    assert len(seen) == 1
    assert seen[0].message.startswith(f"[instance {instance.slug}, through the control plane] ")
    assert result.is_error and "kill switch" in text_of(result), text_of(result)
    assert exists(instance, pid)
    row = wait_row(fleet.cp_admin, [("key_id", "=", key.id), ("tool_name", "=", f"{instance.slug}_unlink")],
                   lambda r: r["status"] != "running")
    assert (row["status"], row["refusal_reason"], row["confirmation"]) == (
        "refused", "mcp_disabled", "accepted (elicitation)"), row
    # the instance saw the first hop only: its row of that correlation id awaits the input
    inst = wait_row(instance.admin, [("request_id", "=", row["request_id"])])
    assert (inst["status"], inst["refusal_reason"]) == ("refused", "input_required"), inst


async def test_control_plane_key_requiring_a_human(fleet):
    """The control plane's own key requires a human confirmation: confirm: true from a client that cannot elicit
    is refused there (nothing reaches the instance); a client that can is asked."""
    instance = fleet.instances[0]
    key = fleet.key(human_confirmation=True)
    pid = partner(instance, "cp-human")
    args = {"model": "res.partner", "ids": [pid], "confirm": True}
    async with cp_client(fleet, key) as plain:
        refused = await plain.call_tool(f"{instance.slug}_unlink", args)
    assert refused.is_error and "requires a human confirmation" in text_of(refused), text_of(refused)
    assert exists(instance, pid)
    seen = []
    async with cp_client(fleet, key, mode=MODERN, elicitation_callback=answering("accept", seen)) as client:
        done = await client.call_tool(f"{instance.slug}_unlink", args)
    assert len(seen) == 1 and not done.is_error, text_of(done)
    assert not exists(instance, pid)


async def test_another_key_cannot_answer_the_question(fleet):
    """While the control plane waits for a 2025 session's answer, another member's key posts an accepting
    response with the question's id (it cannot see it; it is given it here): on its own session it reaches no
    waiting call, on the victim's session it is refused (the session is not its key's). The victim declines:
    nothing ran."""
    instance = fleet.instances[0]
    victim, other = fleet.key(), fleet.key()
    pid = partner(instance, "forged")
    raw = Raw(fleet.cp.url)
    forged, holder = [], []

    async def forge_then_decline(context, params):
        answer = {"jsonrpc": "2.0", "id": context.request_id,
                  "result": {"action": "accept", "content": {"confirm": True}}}
        own = raw.open_session(other)
        forged.append(raw.session_post(own, answer, other).status_code)
        forged.append(raw.session_post(holder[0].e2e.session_id, answer, other).status_code)
        await anyio.sleep(2)  # had the forged answer reached the waiting call, the partner would be gone
        forged.append(exists(instance, pid))
        return ElicitResult(action="decline")

    try:
        async with cp_client(fleet, victim, elicitation_callback=forge_then_decline) as client:
            holder.append(client)
            await client.list_tools()
            result = await client.call_tool(f"{instance.slug}_unlink", {"model": "res.partner", "ids": [pid]})
    finally:
        raw.close()
    assert forged[0] in (200, 202) and forged[1] in (400, 401, 403, 404) and forged[2], forged
    assert result.is_error and "declined" in text_of(result), text_of(result)
    assert exists(instance, pid)
