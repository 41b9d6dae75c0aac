# Pure-Python building blocks of the MCP server: no Odoo imports here, so that
# they can be unit-tested and reused by a stdio bridge or the control plane.
