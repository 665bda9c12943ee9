"""Where things are: the checkout, the captured client requests, the console script."""

import os
import sys

# The checkout's top (this file is tests/support/paths.py).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Requests real clients sent, captured once (tests/support/data/*.json).
DATA = os.path.join(ROOT, "tests", "support", "data")
# The installed `ollama-relay` console script of the interpreter running the tests.
CLI = os.path.join(os.path.dirname(sys.executable), "ollama-relay")
