from . import control_organization, control_server, control_instance, mcp_key, mcp_server, tools_platform
from . import control_posthog, ir_http
