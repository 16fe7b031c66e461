"""`python -m fusebuild`: the same as the `fusebuild` console script (cli.py)."""
import sys

from .cli import main

sys.exit(main())
