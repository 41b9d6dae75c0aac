"""Attack corpora run in Odoo: change push after the subscription and what a human confirms.

``tests/adversarial/push_delivery_cases.jsonl`` (TestPushDeliveryAttacks):

A key subscribes to a record it may read; then its scopes shrink (tool allowlist or denylist without
``read``, categories without ``orm``, a model allowlist without the record's model, another instance), it is
revoked or expires, or its owner is archived or loses the key's company. The next change of the record
must not reach its stream: a subscription never tells a key about a record that key can no longer read.
Controls (``delivered: true``): changes that leave ``read`` of the record to the key keep the updates
coming. An administrator's subscription to the same record, in the same delivery batch, is always
delivered: one subscriber's failing check never drops the others'.

``tests/adversarial/confirm_display_cases.jsonl`` (TestConfirmDisplayAttacks): a destructive call whose
arguments are longer than what the human is shown (a script whose harmful statement comes after a long
harmless head, hundreds of ids): the text the human approves (the elicitation's message, the approval's
description) says that it shows only part of the arguments and how much, or shows their end.

``tests/adversarial/approval_owner_cases.jsonl`` (TestApprovalOwnerAttacks): an approved call whose key then
changes hands (or is revoked and restored) does not run for the key's next holder: the approval was the
previous owner's decision about their own rights.
"""

import json
import re
from pathlib import Path

from odoo import Command
from odoo.tests import tagged

from ..service.context import Connection
from .common import McpToolCase

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "adversarial"
CASES = CORPUS / "push_delivery_cases.jsonl"
DISPLAY_CASES = CORPUS / "confirm_display_cases.jsonl"
OWNER_CASES = CORPUS / "approval_owner_cases.jsonl"


def load_cases(path=CASES):
    if not path.exists():  # an installed wheel carries the addon without the repository's corpus
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@tagged("post_install", "-at_install")
class TestPushDeliveryAttacks(McpToolCase):
    KEY_NAME = "push delivery attacks"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Sub = cls.env["ocore.mcp.subscription"]
        cls.cases = load_cases()
        cls.company = cls.env.company
        cls.other_company = cls.env["res.company"].create({"name": "Push attacks other company"})
        cls.partner = cls.Partner.create({"name": "Push attacks partner"})
        category = cls.env["ocore.mcp.category"]
        cls.values = {
            "PARTNER_ID": cls.partner.id,
            "KEY_COMPANY_ID": cls.company.id,
            "OTHER_COMPANY_ID": cls.other_company.id,
            "SEARCH_CATEGORY_ID": category.search([("code", "=", "search")]).id,
            "METADATA_CATEGORY_ID": category.search([("code", "=", "metadata")]).id,
            "ORM_CATEGORY_ID": category.search([("code", "=", "orm")]).id,
            "COUNTRY_MODEL_ID": cls.env["ir.model"]._get_id("res.country"),
            "PARTNER_MODEL_ID": cls.env["ir.model"]._get_id("res.partner"),
        }

    def fill(self, value):
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in self.values:
            return self.values[value[1:-1]]
        if isinstance(value, str):
            for name, sub in self.values.items():
                value = value.replace("{" + name + "}", str(sub))
        return value

    def subscribe(self, key, uri):
        session = self.env["ocore.mcp.session"]._ocore_open(key.id, "stream", "127.0.0.1",
                                                             protocol_version="2025-11-25")
        conn = Connection(key=key, scope=None, settings=self.settings, transport="stream",
                          protocol_version="2025-11-25", session=session)
        reply = self.server._ocore_handle(conn, {"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe",
                                                 "params": {"uri": uri}})
        self.assertEqual(reply.get("result"), {}, reply)
        return conn.session_id

    def test_corpus(self):
        self.assertGreaterEqual(len(self.cases), 30, f"the corpus {CASES} is missing or short")
        self.assertEqual({c["delivered"] for c in self.cases}, {True, False})

    def test_updates_stop_with_the_read(self):
        failures = []
        for n, case in enumerate(self.cases):
            with self.subTest(case=case["id"]), self.env.cr.savepoint(flush=False) as sp:
                try:
                    why = self.run_case(case, n)
                except Exception as exc:  # noqa: BLE001 - a crash of the delivery is a failure of the case
                    why = f"the delivery failed: {exc!r}"
                finally:
                    sp.rollback()
                    self.env.invalidate_all()
                    self.env.registry.clear_cache()
                if why:
                    failures.append(f"{case['id']}: {why}")
        self.assertFalse(failures, "\n".join(failures))

    def run_case(self, case, n):
        owner = self.make_user(f"push_attack_{n}", [self.env.ref("base.group_user").id,
                                                     self.env.ref("ocore_mcp.group_mcp_user").id],
                               company_id=self.company.id,
                               company_ids=[Command.set([self.company.id, self.other_company.id])])
        key, _secret = self.keys._ocore_create_key(f"push attack {n}", owner, rate_limit=1000000)
        uri = self.fill(case["uri"])
        channel = self.subscribe(key, uri)
        control = self.subscribe(self.key, uri)
        write = self.fill(case["write"])
        owner_write = write.pop("__owner__", None)
        if owner_write:
            owner.write(owner_write)
        if write:
            key.with_context(active_test=False).write(write)
        self.env.flush_all()
        sent = dict(self.Sub._ocore_deliveries({("res_partner", self.partner.id)}, {channel, control}))
        if control not in sent:
            return "the administrator's subscription in the same batch was not delivered"
        if (channel in sent) != case["delivered"]:
            return "delivered after the change" if channel in sent else "not delivered although still readable"
        return None


@tagged("post_install", "-at_install")
class TestConfirmDisplayAttacks(McpToolCase):
    KEY_NAME = "confirm display attacks"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cases = load_cases(DISPLAY_CASES)
        cls.key.human_confirmation = True

    def expand(self, value, partners):
        if isinstance(value, dict):
            if "$range_from_partner" in value:
                return partners[: value["$range_from_partner"]].ids
            if "$pad" in value:
                fill = value.get("fill", "SELECT 1;\n")
                return (fill * (value["$pad"] // len(fill) + 1))[: value["$pad"]] + value["tail"]
            return {k: self.expand(v, partners) for k, v in value.items()}
        return value

    def test_corpus(self):
        self.assertGreaterEqual(len(self.cases), 10, f"the corpus {DISPLAY_CASES} is missing or short")

    def test_the_human_knows_what_is_not_shown(self):
        partners = self.Partner.create([{"name": f"display {n}"} for n in range(1000)])
        failures = []
        for case in self.cases:
            with self.subTest(case=case["id"]):
                args = {**self.expand(case["args"], partners), "confirm": True}
                result = self.server._ocore_call_tool(self.conn(), f"{self.slug}_{case['tool']}", dict(args))
                approval = self.env["ocore.mcp.approval"].search([("key_id", "=", self.key.id),
                                                                  ("tool_name", "=", f"{self.slug}_{case['tool']}")],
                                                                 order="id desc", limit=1)
                if not approval:
                    failures.append(f"{case['id']}: no approval was asked: {result['content'][0]['text'][:200]}")
                    continue
                shown = approval.description
                whole = json.dumps({k: v for k, v in args.items() if k != "confirm"}, ensure_ascii=False)
                tail = whole[-40:]
                if tail not in shown and not re.search(rf"\b{len(whole)}\b", shown.replace(",", "")):
                    failures.append(f"{case['id']}: the human sees {len(shown)} characters of {len(whole)}, "
                                    f"neither the end nor how much is hidden: ...{shown[-160:]!r}")
                approval.unlink()
        self.assertFalse(failures, "\n".join(failures))


@tagged("post_install", "-at_install")
class TestApprovalOwnerAttacks(McpToolCase):
    KEY_NAME = "approval owner attacks"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cases = load_cases(OWNER_CASES)
        cls.other_company = cls.env["res.company"].create({"name": "Approval owner attacks other company"})
        groups = [cls.env.ref("base.group_user").id, cls.env.ref("base.group_partner_manager").id,
                  cls.env.ref("ocore_mcp.group_mcp_user").id]
        companies = {"company_id": cls.env.company.id,
                     "company_ids": [Command.set([cls.env.company.id, cls.other_company.id])]}
        cls.owner = cls.make_user(cls, "approval_attack_owner", groups, **companies)
        cls.new_owner = cls.make_user(cls, "approval_attack_new_owner", groups, **companies)
        cls.values = {"OWNER_ID": cls.owner.id, "NEW_OWNER_ID": cls.new_owner.id,
                      "OTHER_COMPANY_ID": cls.other_company.id}

    def fill(self, value):
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith("{") and value[1:-1] in self.values:
            return self.values[value[1:-1]]
        return value

    def test_corpus(self):
        self.assertGreaterEqual(len(self.cases), 5, f"the corpus {OWNER_CASES} is missing or short")

    def test_an_approval_stays_with_its_owner(self):
        failures = []
        for n, case in enumerate(self.cases):
            with self.subTest(case=case["id"]):
                key, _secret = self.keys._ocore_create_key(f"approval owner {n}", self.owner, rate_limit=1000000)
                key.human_confirmation = True
                partner = self.Partner.create({"name": f"approval owner {n}"})
                args = {"model": "res.partner", "ids": [partner.id], "confirm": True}
                self.server._ocore_call_tool(self.conn(key), f"{self.slug}_unlink", dict(args))
                approval = self.env["ocore.mcp.approval"].search([("key_id", "=", key.id)])
                approval.with_user(self.owner).action_approve()
                for step in ("key", "key_again"):
                    if step in case["after_approval"]:
                        key.with_context(active_test=False).write(self.fill(case["after_approval"][step]))
                if not key.key_prefix:
                    key._ocore_set_new_secret()
                key.invalidate_recordset()
                result = self.server._ocore_call_tool(self.conn(key), f"{self.slug}_unlink", dict(args))
                ran = not partner.exists()
                if ran != case["runs"]:
                    failures.append(f"{case['id']}: {'ran' if ran else 'did not run'} "
                                    f"({approval.state}): {result['content'][0]['text'][:200]}")
        self.assertFalse(failures, "\n".join(failures))
