"""``python -m tests.stress``: run the reliability stress suite and print its table."""

import sys
from pathlib import Path

sys.path.insert(
    0, str(Path(__file__).resolve().parent.parent)
)  # `stress` and `conftest`, as pytest sees them

from stress.run import main

sys.exit(main(sys.argv[1:]))
