"""``python -m fyers_store.auth``: log in to FYERS and store the token (see :mod:`fyers_store.cli.login`)."""

import sys

from fyers_store.cli.login import main

sys.exit(main())
