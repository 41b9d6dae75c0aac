from . import main
from . import impersonate
from . import posthog
from . import control_link
