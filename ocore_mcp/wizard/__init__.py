from . import mcp_key_show
