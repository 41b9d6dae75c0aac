from . import test_control, test_signing
