import base64

from odoo.tests import tagged

from ..tools.attachments import MAX_BYTES
from .common import McpToolCase


@tagged("post_install", "-at_install")
class TestAttachmentTools(McpToolCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner = cls.Partner.create({"name": "Attach target"})
        cls.Attachment = cls.env["ir.attachment"]
        cls.pdf = cls.Attachment.create({"name": "a.pdf", "raw": b"%PDF-1.4 test", "res_model": "res.partner",
                                         "res_id": cls.partner.id, "mimetype": "application/pdf"})
        cls.png = cls.Attachment.create({"name": "b.png", "raw": b"\x89PNG\r\n\x1a\nxx", "res_model": "res.partner",
                                         "res_id": cls.partner.id, "mimetype": "image/png"})
        cls.employee = cls.make_user(cls, "att_employee", [cls.env.ref("base.group_user").id,
                                                          cls.env.ref("ocore_mcp.group_mcp_user").id])
        cls.emp_key, _s = cls.keys._ocore_create_key("att emp", cls.employee, rate_limit=100000)

    def test_list_attachments_and_mimetype_filter(self):
        data = self.ok("list_attachments", {"model": "res.partner", "res_id": self.partner.id})
        self.assertEqual({a["id"] for a in data["attachments"]}, {self.pdf.id, self.png.id})
        self.assertEqual(self.ok("list_attachments", {"model": "res.partner", "res_id": self.partner.id,
                                                      "mimetype": "image/"})["attachments"][0]["id"], self.png.id)
        data = self.ok("list_attachments", {"model": "res.partner", "res_id": self.partner.id,
                                            "mimetype": "application/pdf"})
        self.assertEqual([a["name"] for a in data["attachments"]], ["a.pdf"])
        self.fails("list_attachments", {"model": "res.partner", "res_id": 99999999}, "no res.partner record")

    def test_upload_and_download_round_trip(self):
        content = bytes(range(256)) * 40
        data = self.ok("upload_attachment", {"model": "res.partner", "res_id": self.partner.id, "name": "blob.bin",
                                             "data_base64": base64.b64encode(content).decode()})
        attachment = self.Attachment.browse(data["attachment"]["id"])
        self.assertEqual((attachment.raw, attachment.res_id, attachment.name), (content, self.partner.id, "blob.bin"))
        down = self.ok("download_attachment", {"attachment_id": attachment.id})
        self.assertEqual(base64.b64decode(down["data_base64"]), content)
        self.assertEqual(down["size"], len(content))
        # the default response size of a download is large enough for 10 MB files
        spec = self.env["ocore.mcp.toolset"]._ocore_tool_specs()["download_attachment"]
        self.assertGreater(spec.meta.min_response_kb * 1024, MAX_BYTES * 4 // 3)
        text = self.fails("download_attachment", {"attachment_id": attachment.id, "max_response_size": 4},
                          "larger max_response_size")
        self.assertIn("KB as base64", text)

    def test_upload_limits_and_guards(self):
        args = {"model": "res.partner", "res_id": self.partner.id, "name": "x.txt"}
        self.fails("upload_attachment", {**args, "data_base64": "not base64!!"}, "not valid base64")
        big = base64.b64encode(b"\0" * (MAX_BYTES + 1)).decode()
        self.fails("upload_attachment", {**args, "data_base64": big}, "over 10.0 MB")
        self.fails("upload_attachment", {**args, "data_base64": "eA=="}, "production guard", write_enabled=False)
        ro_key, _s = self.keys._ocore_create_key("ro", self.admin, read_only=True)
        self.fails("upload_attachment", {**args, "data_base64": "eA=="}, "read-only", key=ro_key)
        self.fails("upload_attachment", {**args, "model": "ocore.mcp.key", "res_id": self.key.id,
                                         "data_base64": "eA=="}, "cannot be reached")
        self.assertFalse(self.Attachment.search([("name", "=", "x.txt")]))

    def test_download_runs_as_the_key_owner(self):
        # an attachment of a record the employee cannot read (a private partner of another company user's own)
        secret = self.Attachment.create({"name": "secret.txt", "raw": b"top secret", "res_model": "ir.config_parameter",
                                         "res_id": self.env["ir.config_parameter"].search([], limit=1).id})
        self.assertEqual(base64.b64decode(self.ok("download_attachment", {"attachment_id": secret.id})["data_base64"]),
                         b"top secret")
        self.fails("download_attachment", {"attachment_id": secret.id}, "no attachment", key=self.emp_key)
        self.fails("download_attachment", {"attachment_id": 99999999}, "no attachment")
        # the employee reads what they may read
        data = self.ok("download_attachment", {"attachment_id": self.pdf.id}, key=self.emp_key)
        self.assertEqual(base64.b64decode(data["data_base64"]), b"%PDF-1.4 test")

    def test_model_allowlist_covers_downloads(self):
        limited, _s = self.keys._ocore_create_key("limited", self.admin, rate_limit=100000,
                                                  model_ids=[(6, 0, [self.env.ref("base.model_res_country").id])])
        self.fails("download_attachment", {"attachment_id": self.pdf.id}, "model allowlist", key=limited)
        self.fails("list_attachments", {"model": "res.partner", "res_id": self.partner.id}, "model allowlist",
                   key=limited)

    def test_delete_attachment(self):
        self.fails("delete_attachment", {"attachment_id": self.png.id}, "confirm: true")
        self.assertTrue(self.png.exists())
        preview = self.ok("delete_attachment", {"attachment_id": self.png.id, "dry_run": True})
        self.assertEqual(preview["would_return"]["deleted"]["id"], self.png.id)
        self.assertTrue(self.png.exists())
        data = self.ok("delete_attachment", {"attachment_id": self.png.id, "confirm": True})
        self.assertEqual(data["deleted"]["name"], "b.png")
        self.assertFalse(self.png.exists())
        self.fails("delete_attachment", {"attachment_id": self.png.id, "confirm": True}, "no attachment")
