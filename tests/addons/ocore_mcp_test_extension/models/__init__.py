from . import e2e_extension
from . import e2e_tools
from . import platform_override
from . import conformance_fixtures
