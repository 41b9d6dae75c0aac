from . import (
    mcp_key,
    oauth_authorization,
    oauth_client,
    oauth_code,
    oauth_device,
    oauth_invite,
    oauth_token,
    res_config_settings,
)
