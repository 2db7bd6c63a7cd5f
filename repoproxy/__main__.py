"""``python -m repoproxy`` = the ``repoproxy`` command."""

from repoproxy.cli import main

main()
