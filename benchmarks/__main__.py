"""``python -m benchmarks``: run the benchmark (`benchmarks.run`)."""

import sys

from benchmarks.run import main

sys.exit(main())
