"""One module per command; each offers ``register(subparsers)`` (see netlab.cli)."""
