import sys

from dockerfile_gen.cli import main

sys.exit(main())
