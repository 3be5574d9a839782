"""`python -m openjai.train ARGS` is `openjai train ARGS`."""

import sys

from ..cli import main

sys.exit(main(["train", *sys.argv[1:]]))
