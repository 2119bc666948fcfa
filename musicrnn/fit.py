"""``python -m musicrnn.fit``: the entry point of ``musicrnn.cli.fit``."""
from musicrnn.cli.fit import main

if __name__ == "__main__":
    main()
