from . import test_control, test_signing
from . import test_control_posthog
from . import test_control_attacks
from . import test_notice_lifetime
from . import test_forward_marking
from . import test_assertion_claims
from . import test_forward_elicitation
from . import test_forward_elicitation_attacks
from . import test_forward_answer_cap
from . import test_agent_approval
