"""`python -m mlpjax.report DIR`: the report of a sweep (mlpjax/report/__init__.py)."""

import sys

from mlpjax.report import main

if __name__ == "__main__":
    sys.exit(main())
