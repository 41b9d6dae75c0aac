from . import test_knowledge
from . import test_knowledge_security
from . import test_knowledge_resources
