"""Resources and completion through the SDK client, on every transport and mode: templates listed, a partner
read as a resource, refusals (protected model, model allowlist, category), reports and attachments as
resources, completion of template and prompt arguments, every read audited."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
from mcp import MCPError
from mcp_helpers import TRANSPORT_IDS, TRANSPORTS
from mcp_types import PromptReference, ResourceTemplateReference

pytestmark = pytest.mark.anyio

RECORD = "odoo://{model}/{id}{?fields}"
REPORT = "odoo://{model}/{id}/report/{report}{?format}"


@pytest.fixture(scope="module")
def partner(admin):
    marker = f"E2E-RES-{secrets.token_hex(3)}"
    pid = admin.create("res.partner", {"name": f"Resource Partner {marker}", "ref": marker,
                                       "email": f"res@{marker.lower()}.test"})
    return {"id": pid, "marker": marker}


def contents_json(result):
    assert len(result.contents) == 1
    return json.loads(result.contents[0].text)


@pytest.mark.parametrize(("transport", "mode"), TRANSPORTS, ids=TRANSPORT_IDS)
async def test_templates_listed_and_partner_read(mcp_client, admin, partner, transport, mode):
    async with mcp_client(transport=transport, mode=mode) as client:
        templates = {t.uri_template: t for t in (await client.list_resource_templates()).resource_templates}
        assert {RECORD, "odoo://{model}", REPORT, "odoo://ir.attachment/{id}/content"} <= set(templates)
        assert templates[RECORD].mime_type == "application/json"
        resources = {r.uri: r for r in (await client.list_resources()).resources}
        assert {"odoo://instance", "odoo://models"} <= set(resources)

        uri = f"odoo://res.partner/{partner['id']}"
        result = await client.read_resource(uri)
        assert str(result.contents[0].uri) == uri and result.contents[0].mime_type == "application/json"
        record = contents_json(result)
        assert record["id"] == partner["id"] and partner["marker"] in record["display_name"]
        assert record["_model"] == "res.partner"
        only = contents_json(await client.read_resource(f"{uri}?fields=email,ref"))
        assert set(only) == {"id", "email", "ref", "_model"} and only["ref"] == partner["marker"]

        schema = contents_json(await client.read_resource("odoo://res.partner"))
        assert schema["model"] == "res.partner" and any(f["name"] == "email" for f in schema["simple"])
        instance = contents_json(await client.read_resource("odoo://instance"))
        assert instance["odoo_version"]

        with pytest.raises(MCPError) as missing:
            await client.read_resource("odoo://res.partner/999999999")
        assert missing.value.error.code == -32002
        with pytest.raises(MCPError) as unknown:
            await client.read_resource("odoo://res.partner/1/nothing-here")
        assert unknown.value.error.code == -32002

        completion = (await client.complete(ResourceTemplateReference(type="ref/resource", uri=RECORD),
                                            {"name": "model", "value": "res.part"})).completion
        assert completion.values[0] == "res.partner", completion.values
        fields = (await client.complete(ResourceTemplateReference(type="ref/resource", uri=RECORD),
                                        {"name": "fields", "value": "name,em"},
                                        {"model": "res.partner"})).completion
        assert "name,email" in fields.values and all(v.startswith("name,") for v in fields.values)
    rows = admin.wait_audit([("event", "=", "resource"), ("tool_name", "=", uri)],
                            predicate=lambda r: r["status"] == "success" and r["transport"])
    assert rows[0]["tool"] == "read" and rows[0]["category"] == "orm"
    assert json.loads(rows[0]["params"])["uri"] == uri


async def test_resource_refusals_are_audited(mcp_client, admin, make_key, partner):
    allow = make_key(models=["res.country"])
    async with mcp_client(key=allow) as client:
        with pytest.raises(MCPError) as denied:
            await client.read_resource(f"odoo://res.partner/{partner['id']}")
        assert "model allowlist" in denied.value.error.message
        country = contents_json(await client.read_resource("odoo://res.country/1"))
        assert country["id"] == 1
        values = (await client.complete(ResourceTemplateReference(type="ref/resource", uri=RECORD),
                                        {"name": "model", "value": "res."})).completion.values
        assert values == ["res.country"]
    rows = admin.wait_audit([("event", "=", "resource"), ("key_id", "=", allow.id), ("status", "=", "refused")])
    assert rows[0]["refusal_reason"] == "model_denied"

    async with mcp_client() as client:
        with pytest.raises(MCPError) as protected:
            await client.read_resource("odoo://ocore.mcp.key/1")
        assert "cannot be reached" in protected.value.error.message
        values = (await client.complete(ResourceTemplateReference(type="ref/resource", uri=RECORD),
                                        {"name": "model", "value": "ocore."})).completion.values
        assert values == []

    metadata_only = make_key(categories=["metadata"])
    async with mcp_client(key=metadata_only) as client:
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert "odoo://{model}" in templates and RECORD not in templates
        with pytest.raises(MCPError) as category:
            await client.read_resource(f"odoo://res.partner/{partner['id']}")
        assert "category" in category.value.error.message


async def test_report_and_attachment_resources(mcp_client, admin, partner):
    model_id = admin.search_read("ir.model", [("model", "=", "res.country.group")], ["id"])[0]["id"]
    payload = b"resource attachment " + secrets.token_bytes(8)
    attachment = admin.create("ir.attachment", {"name": "e2e-resource.bin", "mimetype": "application/octet-stream",
                                                "datas": base64.b64encode(payload).decode(),
                                                "res_model": "res.partner", "res_id": partner["id"]})
    async with mcp_client() as client:
        html = await client.read_resource(f"odoo://ir.model/{model_id}/report/base.report_ir_model_overview?format=html")
        assert html.contents[0].mime_type == "text/html" and "res.country.group" in html.contents[0].text
        blob = await client.read_resource(f"odoo://ir.attachment/{attachment}/content")
        assert base64.b64decode(blob.contents[0].blob) == payload
        with pytest.raises(MCPError) as wrong_model:
            await client.read_resource(f"odoo://res.partner/{partner['id']}/report/base.report_ir_model_overview"
                                       "?format=html")
        assert wrong_model.value.error.code in (-32002, -32602)
        reports = (await client.complete(ResourceTemplateReference(type="ref/resource", uri=REPORT),
                                         {"name": "report", "value": "base.report_irmodel"},
                                         {"model": "ir.model"})).completion.values
        assert reports and all(r.startswith("base.report_irmodel") for r in reports)
        prompt = (await client.list_prompts()).prompts
        with_model = next(p for p in prompt if any(a.name == "model" for a in p.arguments or []))
        values = (await client.complete(PromptReference(type="ref/prompt", name=with_model.name),
                                        {"name": "model", "value": "sale.ord"})).completion.values
        assert values == [] or values[0].startswith("sale.ord")


async def test_internal_user_sees_only_what_it_may_read(mcp_client, internal_user_key):
    async with mcp_client(key=internal_user_key) as client:
        values = (await client.complete(ResourceTemplateReference(type="ref/resource", uri=RECORD),
                                        {"name": "model", "value": "ir.config"})).completion.values
        assert "ir.config_parameter" not in values
        assert "res.partner" in (await client.complete(ResourceTemplateReference(type="ref/resource", uri=RECORD),
                                                       {"name": "model", "value": "res.partner"})).completion.values
        with pytest.raises(MCPError):
            await client.read_resource("odoo://ir.config_parameter/1")
