"""``python -m musicrnn.data``: the entry point of ``musicrnn.cli.data``."""
from musicrnn.cli.data import main

if __name__ == "__main__":
    main()
