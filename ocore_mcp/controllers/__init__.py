from . import main
from . import impersonate
