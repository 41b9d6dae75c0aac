from odoo import models


def mcp_prompt(description, arguments=()):
    """Declare a ``_prompt_<name>`` method of ``ocore.mcp.prompts`` as an MCP prompt.

    ``arguments`` is a sequence of (name, description, required) tuples. The
    method receives the arguments as keyword strings and returns a list of
    (role, text) messages or a single text (sent as one user message).
    """

    def decorate(func):
        func._mcp_prompt = {"description": description, "arguments": tuple(arguments)}
        return func

    return decorate


class McpPrompts(models.AbstractModel):
    """Prompt templates. Add one with ``_inherit = "ocore.mcp.prompts"`` and
    a ``_prompt_<name>`` method decorated with :func:`mcp_prompt`."""

    _name = "ocore.mcp.prompts"
    _description = "MCP Prompt Templates"

    def _ocore_prompt_specs(self):
        specs = {}
        cls = type(self)
        for attr in dir(cls):
            if not attr.startswith("_prompt_"):
                continue
            for klass in cls.__mro__:
                func = klass.__dict__.get(attr)
                if func is not None and getattr(func, "_mcp_prompt", None):
                    specs[attr[len("_prompt_") :]] = dict(func._mcp_prompt, method=attr)
                    break
        return specs
