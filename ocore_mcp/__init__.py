from . import controllers, models, tools, wizard
from .hooks import uninstall_hook
