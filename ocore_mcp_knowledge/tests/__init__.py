from . import test_knowledge
from . import test_knowledge_security
from . import test_knowledge_resources
from . import test_tool_list_budget
