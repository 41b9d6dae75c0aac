"""Fixtures of the adversarial corpus: the keys, records and files root its cases refer to."""

from __future__ import annotations

import os
import secrets
import shutil

import pytest

RATE = 100000  # the corpus makes many calls with few keys


@pytest.fixture(scope="session")
def adv_tally(request):
    """Cases run and refused, per family (printed at the end of the session)."""
    if not hasattr(request.config, "_ocore_adv_tally"):
        request.config._ocore_adv_tally = {}
    return request.config._ocore_adv_tally


def pytest_terminal_summary(terminalreporter):
    tally = getattr(terminalreporter.config, "_ocore_adv_tally", None)
    if not tally:
        return
    cases = sum(c for c, _r in tally.values())
    refused = sum(r for _c, r in tally.values())
    detail = ", ".join(f"{family} {r}/{c}" for family, (c, r) in sorted(tally.items()))
    terminalreporter.write_line(f"adversarial: {cases} cases, {refused} refused ({detail})")


@pytest.fixture(scope="module")
def adv(odoo, admin):
    """Everything the cases' placeholders name: keys, records, the files root with its escapes."""
    tag = secrets.token_hex(3)
    uid = admin.create_user(f"adv_user_{tag}")
    demo_uid = admin.create_user(f"adv_victim_{tag}")
    partner = admin.create("res.partner", {"name": f"adversarial {tag}", "ref": "adv-before"})
    partner_att = admin.create("ir.attachment", {"name": "p.txt", "res_model": "res.partner", "res_id": partner,
                                                 "datas": "eA=="})
    user_att = admin.create("ir.attachment", {"name": "u.txt", "res_model": "res.users", "res_id": uid,
                                              "datas": "eA=="})
    crons = admin.search_read("ir.cron", [], ["id"], limit=1)
    # server actions made tools (cases/server_actions.jsonl): one any key owner may run, one for administrators
    partner_model = admin.search_read("ir.model", [("model", "=", "res.partner")], ["id"])[0]["id"]
    for name, groups in (("adv_action_tag", []), ("adv_action_admin", [admin.ref("base.group_system")])):
        if not admin.search_read("ir.actions.server", [("mcp_tool_name", "=", name)], ["id"]):
            admin.create("ir.actions.server", {
                "name": name, "model_id": partner_model, "state": "code", "mcp_tool": True, "mcp_tool_name": name,
                "code": "records.write({'ref': (env.context.get('mcp_values') or {}).get('ref', 'adv-after')})",
                admin.user_groups_field(): [(6, 0, groups)]})

    root = odoo.custom_addons / f"adv_root_{tag}"
    outside = odoo.custom_addons / f"adv_outside_{tag}"
    (root / "e2e_addon" / "models").mkdir(parents=True)
    (root / "e2e_addon" / "__init__.py").write_text("# adversarial\n")
    (root / "e2e_addon" / "__manifest__.py").write_text("{'name': 'adv', 'license': 'LGPL-3'}\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / ".git" / "hooks").mkdir()
    # symlinks to .git, into it and to a parent of it (cases/files_symlink.jsonl)
    for name, target in (("gitlink", ".git"), ("gitcfg", ".git/config"), ("githooks", ".git/hooks"),
                         ("gitchain", "gitlink"), ("githook_dangling", ".git/hooks/post-checkout"),
                         ("e2e_addon/gitcfg.py", "../.git/config"), ("e2e_addon/up", "..")):
        os.symlink(target, root / name)
    outside.mkdir()
    (outside / "secret.txt").write_text("outside secret\n")
    os.symlink(outside, root / "escape")
    os.symlink(outside / "secret.txt", root / "e2e_addon" / "link.py")

    keys = {
        "admin": admin.create_key("adv admin", rate_limit=RATE),
        "orm": admin.create_key("adv orm only", categories=("orm",), rate_limit=RATE),
        "partner_only": admin.create_key("adv partner only", models=("res.partner",), rate_limit=RATE),
        "read_only": admin.create_key("adv read-only", read_only=True, rate_limit=RATE),
        "other_instance": admin.create_key("adv other instance", instance_scope="some_other_instance", rate_limit=RATE),
        "allow_search_read": admin.create_key("adv allowlist", tool_allowlist="search_read\nread", rate_limit=RATE),
        "deny_writes": admin.create_key("adv denylist", rate_limit=RATE, tool_denylist=(
            "create\nunlink\nexecute_method\nexecute_sql")),
        "user": admin.create_key("adv internal user", user_id=uid, rate_limit=RATE),
    }
    values = {
        "SLUG": odoo.slug,
        "HOST": odoo.url.split("://", 1)[1],  # host:port the suite reaches the server at (web.base.url)
        "PORT": odoo.url.rsplit(":", 1)[1],
        "ROOT": str(root),
        "OUTSIDE": str(outside),
        "PARTNER_ID": partner,
        "PARTNER_ATTACHMENT_ID": partner_att,
        "USER_ATTACHMENT_ID": user_att,
        "DEMO_USER_ID": demo_uid,
        "CRON_ID": crons[0]["id"],
        "ROOT_UID": admin.ref("base.user_root"),
        "ADMIN_ID": admin.ref("base.user_admin"),
        "ADMIN_ID_STR": str(admin.ref("base.user_admin")),
        "PUBLIC_ID": admin.ref("base.public_user"),
        "DEFAULT_ID": admin.ref("base.default_user"),
    }
    with admin.params(files_root=str(root)):
        yield {"keys": keys, "values": values, "root": root, "outside": outside}
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(outside, ignore_errors=True)
