"""Tool family "attachments": list, upload, download and delete files attached to records.

Every tool runs as the key owner: Odoo's attachment access rules apply (an
attachment is as visible and as writable as the record it belongs to). Unlike
the hosted product's text, ``download_attachment`` does not run as the
administrator and bypasses no record rule. Files are limited to 10 MB.
"""

import base64
import binascii
from typing import Annotated

from odoo import models
from pydantic import Field

from ..lib import compat
from ..lib.tooling import mcp_tool
from ..service.policy import Refusal, check_model_allowed

MAX_BYTES = 10 * 1024 * 1024
# base64 of 10 MB plus the JSON around it, in KB: what a download needs as response size
DOWNLOAD_KB = (MAX_BYTES * 4 // 3) // 1024 + 64
RecordId = Annotated[int, Field(ge=1)]


def _size_text(size):
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.1f} KB"


class AttachmentTools(models.AbstractModel):
    _name = "ocore.mcp.tools.attachments"
    _inherit = "ocore.mcp.toolset"
    _description = "MCP tools: attachments"

    def _ocore_record(self, model, res_id):
        records = self._data_model(model)
        record = records.browse(res_id).exists()
        if not record:
            raise Refusal("not_found", f"res_id: no {model} record with id {res_id}")
        return record

    def _ocore_attachment(self, attachment_id, operation="read"):
        # search() as the key owner: ir.attachment's own access rules hide what the user cannot read
        attachment = self.env["ir.attachment"].search([("id", "=", attachment_id)])
        if not attachment:
            raise Refusal("not_found", f"attachment_id: no attachment {attachment_id} (or not visible to you)")
        compat.check_attachment_access(attachment, operation)
        if attachment.res_model:
            call = self._call()
            if call is not None:  # the key's model allowlist covers the attached record's model
                check_model_allowed(attachment.res_model, call.connection.scope)
            if self._ocore_protected_model(attachment.res_model):
                raise Refusal("model_denied", f"attachments of {attachment.res_model} cannot be reached through MCP")
        return attachment

    def _ocore_row(self, attachment):
        return {
            "id": attachment.id,
            "name": attachment.name,
            "mimetype": attachment.mimetype,
            "file_size": attachment.file_size,
            "type": attachment.type,
            "url": attachment.url or None,
            "res_model": attachment.res_model or None,
            "res_id": attachment.res_id or None,
            "create_date": attachment.create_date and attachment.create_date.strftime("%Y-%m-%d %H:%M:%S"),
            "create_uid": [attachment.create_uid.id, attachment.create_uid.name] if attachment.create_uid else None,
        }

    @mcp_tool("attachments", title="List attachments")
    def _tool_list_attachments(self, model: str, res_id: RecordId, mimetype: str | None = None,
                               limit: Annotated[int, Field(ge=1, le=500)] = 100) -> dict:
        """A record's attachments: id, name, mimetype, size, date.

        Args:
            mimetype: Type or prefix (image/).
        """
        record = self._ocore_record(model, res_id)
        domain = [("res_model", "=", record._name), ("res_id", "=", record.id)]
        if mimetype:
            domain.append(("mimetype", "=like", mimetype.replace("%", "") + "%") if mimetype.endswith("/")
                          else ("mimetype", "=", mimetype))
        attachments = self.env["ir.attachment"].search(domain, limit=limit, order="id desc")
        return {"model": record._name, "res_id": record.id, "count": len(attachments),
                "attachments": [self._ocore_row(a) for a in attachments]}

    @mcp_tool("attachments", kind="write", title="Upload attachment")
    def _tool_upload_attachment(self, model: str, res_id: RecordId, name: Annotated[str, Field(min_length=1,
                                max_length=255)], data_base64: Annotated[str, Field(min_length=1)],
                                mimetype: str | None = None) -> dict:
        """Attach a base64 file (max 10 MB) to a record.

        Args:
            mimetype: Guessed if omitted.
        """
        record = self._ocore_record(model, res_id)
        if len(data_base64) > (MAX_BYTES * 4 // 3) + 8:
            raise Refusal("limit_exceeded", f"the file is over {_size_text(MAX_BYTES)} (about "
                          f"{_size_text(len(data_base64) * 3 // 4)}); nothing was attached")
        try:
            raw = base64.b64decode("".join(data_base64.split()), validate=True)
        except (binascii.Error, ValueError):
            raise Refusal("invalid_input", "data_base64: not valid base64") from None
        if len(raw) > MAX_BYTES:
            raise Refusal("limit_exceeded", f"the file is {_size_text(len(raw))}, over {_size_text(MAX_BYTES)}; "
                          "nothing was attached")
        values = {"name": name, "raw": raw, "res_model": record._name, "res_id": record.id}
        if mimetype:
            values["mimetype"] = mimetype
        attachment = self.env["ir.attachment"].create(values)
        return {"attachment": self._ocore_row(attachment), "checksum": attachment.checksum}

    @mcp_tool("attachments", min_response_kb=DOWNLOAD_KB, title="Download attachment")
    def _tool_download_attachment(self, attachment_id: RecordId) -> dict:
        """An attachment's content as base64 (max 10 MB)."""
        attachment = self._ocore_attachment(attachment_id)
        if attachment.type == "url":
            return {"attachment": self._ocore_row(attachment), "data_base64": None,
                    "note": "This attachment is a link; it has no stored content."}
        size = attachment.file_size or 0
        if size > MAX_BYTES:
            raise Refusal("limit_exceeded", f"attachment {attachment.id} is {_size_text(size)}, over the "
                          f"{_size_text(MAX_BYTES)} download limit")
        raw = attachment.raw or b""
        encoded = base64.b64encode(raw).decode()
        call = self._call()
        if call is not None and len(encoded) + 2048 > call.max_response_kb * 1024:
            raise Refusal("limit_exceeded", f"the file is {len(encoded) // 1024 + 1} KB as base64, over "
                          f"max_response_size={call.max_response_kb} KB; call again with a larger max_response_size")
        return {"attachment": self._ocore_row(attachment), "size": len(raw), "data_base64": encoded}

    @mcp_tool("attachments", kind="destructive", title="Delete attachment")
    def _tool_delete_attachment(self, attachment_id: RecordId) -> dict:
        """Delete an attachment."""
        attachment = self._ocore_attachment(attachment_id, "unlink")
        row = self._ocore_row(attachment)
        attachment.unlink()
        return {"deleted": row}
