"""The control plane's work that waits for no client: run once the response has been sent."""

from odoo import models
from odoo.http import request


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _post_dispatch(cls, response):
        """Hang the request's after-response work (``ocore.mcp.server._ocore_control_after_response``: the
        outcome of a forwarded call's audit row) on the response, run by the WSGI server once it has sent it;
        work added later runs at once."""
        super()._post_dispatch(response)
        pending = getattr(request, "_ocore_after_response", None)
        request._ocore_after_response = False
        if not pending:
            return

        def run():
            for job in pending:
                job()

        if hasattr(response, "call_on_close"):
            response.call_on_close(run)
        else:
            run()
