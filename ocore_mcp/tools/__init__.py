from . import platform, orm, orm_csv, search
from . import metadata, prompts
from . import files, modules
from . import sql, shell
from . import monitoring
from . import system, system_backup, attachments, reports
from . import actions
