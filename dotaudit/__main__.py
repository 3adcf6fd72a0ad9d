import sys

from dotaudit.cli import main

sys.exit(main())
