"""`python -m mlpjax.landscape WHAT …`: `critical` (landscape/critical_cli.py) or one of the geometry commands (landscape/commands.py)."""

import sys

from mlpjax.landscape import commands, critical_cli

if __name__ == "__main__":
    sys.exit(critical_cli.main() if sys.argv[1:2] == ["critical"] else commands.main())
