from . import main
from . import impersonate
from . import control_link
