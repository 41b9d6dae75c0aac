import sys

from .bridge import main

sys.exit(main())
