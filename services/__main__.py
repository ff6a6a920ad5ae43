"""`python -m services` is `votestream`."""

from services.cli import main

main()
