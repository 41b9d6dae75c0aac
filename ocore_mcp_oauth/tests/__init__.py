from . import test_oauth_http, test_oauth_models, test_oauth_secrets
from . import test_attacker_pass
