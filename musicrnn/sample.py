"""``python -m musicrnn.sample``: the entry point of ``musicrnn.cli.sample``."""
from musicrnn.cli.sample import main

if __name__ == "__main__":
    main()
