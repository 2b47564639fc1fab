"""`python -m genforge`: the genforge command."""

from genforge.core.app.cli import main

main()
