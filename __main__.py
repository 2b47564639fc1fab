"""`python -m genforge`: the genforge command."""

from genforge.app.cli import main

main()
