"""``python -m codeactions_core.cli``: the ``codeactions`` command."""

import sys

from codeactions_core.cli.main import main

sys.exit(main())
