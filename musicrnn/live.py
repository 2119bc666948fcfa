"""``python -m musicrnn.live``: the entry point of ``musicrnn.cli.live``."""
from musicrnn.cli.live import main

if __name__ == "__main__":
    main()
