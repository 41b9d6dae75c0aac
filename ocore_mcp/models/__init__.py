from . import (
    mcp_category,
    mcp_credential,
    mcp_key,
    mcp_session,
    mcp_message,
    mcp_audit_log,
    mcp_rate_limit,
    mcp_toolset,
    res_users,
    mcp_prompts,
    mcp_server,
    res_config_settings,
)
from . import mcp_impersonation
from . import ir_module_module, mcp_module_event
from . import mcp_control_link
from . import mcp_posthog  # after mcp_control_link: it extends the link
from . import ir_ui_view, res_groups
from . import mcp_resources, mcp_completion
from . import mcp_subscription
from . import ir_actions_server, mcp_tool_setting, mcp_playground
from . import mcp_approval
from . import mcp_stream
