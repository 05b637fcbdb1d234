"""``python -m netlab``: the same program as the ``netlab`` console script."""
from netlab.cli import console_main

if __name__ == "__main__":
    console_main()
