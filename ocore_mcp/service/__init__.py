# Odoo-side runtime of the MCP server: call context, the policy pipeline,
# the audit writer and cross-process notifications. Transport framing lives
# in controllers/, protocol methods in models/mcp_server.py.
