{
    "name": "oCore MCP test extension (end-to-end test fixture)",
    "summary": "Test fixture of the end-to-end suite: proves that a third-party addon adds and overrides MCP "
    "tools with _inherit alone, and provides slow/failing tools for the policy tests. Not a product addon.",
    "version": "1.0.0",
    "category": "Hidden/Tests",
    "author": "oCore MCP contributors",
    "license": "LGPL-3",
    "depends": ["ocore_mcp"],
    "data": ["data/ocore_mcp_category_data.xml"],
    "installable": True,
    "application": False,
}
