from . import test_core
from . import test_edge
from . import test_key_security
from . import test_tools_orm
from . import test_tools_search
from . import test_tools_metadata
from . import test_tools_files, test_tools_modules
from . import test_sqlguard
from . import test_tools_sql
from . import test_tools_sql_credentials
from . import test_tools_shell
from . import test_tools_system
from . import test_tools_export
from . import test_tools_attachments
from . import test_tools_reports
from . import test_notify
from . import test_posthog, test_tools_monitoring, test_posthog_relay
from . import test_audit_security
from . import test_compat
from . import test_server_action_tools
from . import test_resources
from . import test_audit_ux
from . import test_tool_settings
from . import test_playground
from . import test_tool_annotations
from . import test_approval
from . import test_subscriptions
from . import test_tools_list_cache
