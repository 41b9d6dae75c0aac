from . import platform, orm, search
from . import metadata, prompts
from . import files, modules
from . import sql, shell
from . import system, backup, export, attachments, reports
