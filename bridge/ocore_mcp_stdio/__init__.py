"""ocore-mcp-stdio: the stdio bridge of oCore MCP (see bridge.py)."""

from .bridge import Bridge, DeviceAuth, __version__, main

__all__ = ["Bridge", "DeviceAuth", "__version__", "main"]
