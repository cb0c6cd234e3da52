"""``python -m zmqactors.cli``: the ``zmqactors`` command line."""

import sys

from zmqactors.cli import main

sys.exit(main())
