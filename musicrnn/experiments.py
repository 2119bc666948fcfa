"""``python -m musicrnn.experiments``: the entry point of ``musicrnn.cli.experiments``."""
from musicrnn.cli.experiments import main

if __name__ == "__main__":
    main()
