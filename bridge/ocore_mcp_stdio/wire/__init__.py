"""The project's protocol code, shared with the server: ``protocol.py`` is the server's own
``ocore_mcp/lib/protocol.py`` (a link in the source tree, a copy in a built wheel); ``errors.py`` gives it the
two names it needs of the server's error module without Odoo."""
