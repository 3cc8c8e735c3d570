"""``python -m fraudops_bank client ...``: the same as the ``fraudops-bank`` command."""

import sys

from fraudops_bank.run import main

sys.exit(main())
