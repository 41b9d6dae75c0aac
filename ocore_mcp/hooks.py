"""Install hooks of ocore_mcp."""

from .lib import sqlrole


def uninstall_hook(env):
    """Remove the SQL tools' role grants and policies from this database (and the role when no other
    database of the cluster uses it)."""
    sqlrole.drop(env.cr)
