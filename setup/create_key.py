# Creates an MCP API key for the admin user and prints its secret once.
# Run through Odoo's shell, which provides `env`:
#     odoo-bin shell -c .local/odoo.conf -d ocore --no-http < setup/create_key.py
# Prints "OCORE_KEY=<secret>" on success; fails with "OCORE_KEY_ERROR: <reason>" otherwise.
import datetime

env = globals()["env"]  # noqa: F821 (given by odoo-bin shell)


def fail(reason):
    raise SystemExit("OCORE_KEY_ERROR: " + reason)


if "ocore.mcp.key" not in env:
    fail("the model ocore.mcp.key does not exist in this database: is the ocore_mcp addon installed?")
Key = env["ocore.mcp.key"].sudo()
if not hasattr(Key, "_ocore_create_key"):
    fail("ocore.mcp.key has no _ocore_create_key(name, user) method; update the addon (setup/run --update)")

stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
_record, secret = Key._ocore_create_key("setup/run " + stamp, env.ref("base.user_admin"))
env.cr.commit()
print("OCORE_KEY=" + secret)
