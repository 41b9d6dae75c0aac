from . import controllers, models, tools, wizard
from .hooks import uninstall_hook
from .lib import logfilter

logfilter.install()  # no secret of a URL (invite links, login links, user codes) in Odoo's access log
