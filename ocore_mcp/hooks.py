"""Install hooks of ocore_mcp."""

from .lib import shellguard, sqlrole


def uninstall_hook(env):
    """Remove the SQL tools' role grants and policies from this database (and the role when no other
    database of the cluster uses it), and the shell calls' fence table."""
    sqlrole.drop(env.cr)
    for statement in shellguard.FENCE_DROP:
        env.cr.execute(statement)
