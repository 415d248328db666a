import sys

from leafnet.cli import main

sys.exit(main())
