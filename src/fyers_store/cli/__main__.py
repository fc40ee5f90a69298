"""``python -m fyers_store.cli``: the same as the ``fyers-store`` command."""

import sys

from fyers_store.cli.main import main

sys.exit(main())
