"""``python -m musicrnn.evaluate``: the entry point of ``musicrnn.cli.evaluate``."""
from musicrnn.cli.evaluate import main

if __name__ == "__main__":
    main()
