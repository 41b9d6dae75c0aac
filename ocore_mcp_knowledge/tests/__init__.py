from . import test_knowledge
