from . import knowledge_tag, knowledge_note, saved_filter, bookmark, mcp_server
from . import mcp_resources
