"""The series differences handled in lib/compat.py, on whichever of Odoo 17.0, 18.0, 19.0 runs the tests."""

import io

import psycopg2

from odoo import release
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger
from odoo.tools.convert import convert_xml_import

from ..lib import compat


@tagged("post_install", "-at_install")
class TestSeriesCompat(TransactionCase):
    def test_views_written_the_18_0_way_load_on_every_series(self):
        """What another addon writes in 18.0's words (list views, search groups with a label, an inline
        settings action) is stored in the running series' words, and Odoo's validation accepts it."""
        View = self.env["ir.ui.view"]
        lst = View.create({"name": "compat list", "model": "res.partner",
                           "arch": '<list><field name="name"/><field name="child_ids" mode="list,kanban">'
                                   '<list><field name="name"/></list></field></list>'})
        ext = View.create({"name": "compat list ext", "model": "res.partner", "inherit_id": lst.id,
                           "arch": '<xpath expr="//list/field[@name=\'name\']" position="after">'
                                   '<field name="email"/></xpath>'})
        search = View.create({"name": "compat search", "model": "res.partner",
                              "arch": '<search><field name="name"/><group expand="0" string="Group By">'
                                      '<filter name="by_country" string="Country" context="{\'group_by\': '
                                      '\'country_id\'}"/></group></search>'})
        action = self.env["ir.actions.act_window"].create({
            "name": "compat", "res_model": "res.partner", "view_mode": "list,form", "target": "inline"})
        tree = compat.lists_are_trees(self.env)
        self.assertEqual(tree, release.version_info[0] < 18)
        self.assertEqual(lst.type, "tree" if tree else "list")
        self.assertIn("<tree>" if tree else "<list>", lst.arch_db)
        self.assertIn('mode="tree,kanban"' if tree else 'mode="list,kanban"', lst.arch_db)
        self.assertIn("//tree/field" if tree else "//list/field", ext.arch_db)
        self.assertEqual(action.view_mode, "tree,form" if tree else "list,form")
        bare = not compat.search_groups_take_attributes()
        self.assertEqual(bare, release.version_info[0] >= 19)
        self.assertEqual('expand="0"' in search.arch_db, not bare)
        self.assertEqual(action.target, "current" if "inline" not in
                         dict(action._fields["target"].selection) else "inline")
        # the combined view renders: the extension applies to the adapted parent
        arch = self.env["res.partner"].get_view(lst.id, "tree" if tree else "list")["arch"]
        self.assertIn('name="email"', arch)
        # a later write is adapted too
        lst.arch = '<list><field name="name"/><field name="display_name"/></list>'
        self.assertIn("<tree>" if tree else "<list>", lst.arch_db)

    def test_data_files_written_the_18_0_way_load_on_every_series(self):
        """The same through a data file (whose archs start with an XML declaration), as another addon's."""
        xml = b"""<?xml version="1.0" encoding="utf-8"?>
<odoo>
    <record id="compat_test_list" model="ir.ui.view">
        <field name="name">compat.test.list</field>
        <field name="model">res.partner</field>
        <field name="arch" type="xml"><list><field name="name"/></list></field>
    </record>
    <record id="compat_test_search" model="ir.ui.view">
        <field name="name">compat.test.search</field>
        <field name="model">res.partner</field>
        <field name="arch" type="xml">
            <search>
                <field name="name"/>
                <group expand="0" string="Group By">
                    <filter name="by_country" string="Country" context="{'group_by': 'country_id'}"/>
                </group>
            </search>
        </field>
    </record>
    <record id="compat_test_action" model="ir.actions.act_window">
        <field name="name">compat</field>
        <field name="res_model">res.partner</field>
        <field name="view_mode">list,form</field>
        <field name="target">inline</field>
    </record>
</odoo>"""
        data = io.BytesIO(xml)
        data.name = "compat_test.xml"
        convert_xml_import(self.env, "ocore_mcp", data, {}, "init", False)
        tree = compat.lists_are_trees(self.env)
        self.assertEqual(self.env.ref("ocore_mcp.compat_test_list").type, "tree" if tree else "list")
        search = self.env.ref("ocore_mcp.compat_test_search")
        self.assertEqual('expand="0"' in search.arch_db, compat.search_groups_take_attributes())
        action = self.env.ref("ocore_mcp.compat_test_action")
        self.assertEqual(action.view_mode, "tree,form" if tree else "list,form")
        self.assertIn(action.target, ("inline", "current"))

    def test_table_constraints_exist_in_the_database(self):
        """The constraints declared through compat.table_constraints are real PostgreSQL constraints
        (19.0 ignores ``_sql_constraints``)."""
        self.env.cr.execute("SELECT conname FROM pg_constraint WHERE conname IN %s",
                            [("ocore_mcp_category_code_unique", "ocore_mcp_session_session_id_unique",
                              "ocore_mcp_key_rate_limit_positive")])
        self.assertEqual(len(self.env.cr.fetchall()), 3)
        category = self.env["ocore.mcp.category"].search([], limit=1)
        with mute_logger("odoo.sql_db"), self.assertRaises(psycopg2.IntegrityError), self.env.cr.savepoint():
            self.env.cr.execute("INSERT INTO ocore_mcp_category (code, name) VALUES (%s, '{\"en_US\": \"dup\"}')",
                                [category.code])

    def test_groups_are_in_the_mcp_category(self):
        for xmlid in ("ocore_mcp.group_mcp_viewer", "ocore_mcp.group_mcp_user", "ocore_mcp.group_mcp_manager"):
            group = self.env.ref(xmlid)
            self.assertEqual(compat.group_category(group), self.env.ref("ocore_mcp.module_category_mcp"))
            self.assertEqual(compat.group_category_name(group), "MCP")
        manager = self.env.ref("ocore_mcp.group_mcp_manager")
        self.assertIn(self.env.ref("base.user_admin"), manager[compat.group_users_field(manager)])

    def test_run_cron_now_raises_and_rolls_back(self):
        """A scheduled action run by compat.run_cron_now raises its error (19.0's method_direct_trigger
        logs it and reports success)."""
        model = self.env["ir.model"]._get("res.partner")
        cron = self.env["ir.cron"].create({
            "name": "compat failing cron", "model_id": model.id, "state": "code",
            "code": "model.create({'name': 'compat cron partner'})\nraise UserError('compat cron failed')",
            "interval_number": 1, "interval_type": "days", "active": False,
        })
        with self.assertRaisesRegex(Exception, "compat cron failed"), self.env.cr.savepoint():
            compat.run_cron_now(cron)
        self.assertFalse(self.env["res.partner"].search([("name", "=", "compat cron partner")]))
        cron.code = "model.create({'name': 'compat cron partner'})"
        compat.run_cron_now(cron)
        self.assertTrue(self.env["res.partner"].search([("name", "=", "compat cron partner")]))
        self.assertTrue(cron.lastcall)

    def test_config_lists_and_paths(self):
        paths = compat.config_list("addons_path")
        self.assertTrue(paths and all(isinstance(p, str) and "," not in p for p in paths))
        self.assertTrue(compat.odoo_root().endswith("odoo"))
        self.assertTrue(compat.module_version("ocore_mcp").startswith(release.major_version + "."))
        self.assertTrue(compat.in_odoo_test())
