"""``python -m fyers_store.auth``: log in to FYERS and store the token (see :mod:`fyers_store.auth.commands`)."""

import sys

from fyers_store.auth.commands import main

sys.exit(main())
