import sys

from modelatlas.cli import main

sys.exit(main())
