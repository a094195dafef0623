"""`python -m sentilite`: the same command as `sentilite`, for when the script is not on PATH."""
import sys

from sentilite.cli import main

sys.exit(main())
