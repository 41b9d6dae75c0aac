from . import control_secret_show
from . import control_enrol
