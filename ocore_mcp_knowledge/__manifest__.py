{
    "name": "oCore MCP Knowledge Layer",
    "summary": "Notes, model and instance summaries, saved filters and bookmarks that AI assistants keep "
    "across MCP sessions, shared by every API key of a company, with auto-context in tool descriptions",
    "version": "1.0.0",
    "category": "Productivity/AI",
    "website": "https://github.com/ocore-mcp/ocore-mcp-odoo",
    "author": "oCore MCP contributors",
    "license": "LGPL-3",
    "depends": ["ocore_mcp"],
    "data": [
        "security/ir.model.access.csv",
        "security/ocore_mcp_knowledge_rules.xml",
        "views/knowledge_tag_views.xml",
        "views/knowledge_note_views.xml",
        "views/saved_filter_views.xml",
        "views/bookmark_views.xml",
        "views/ocore_mcp_knowledge_menus.xml",
    ],
}
