import sys

from genai_lib.cli import main

sys.exit(main())
