"""``python -m musicrnn.studio``: the entry point of ``musicrnn.studio.cli``."""
from musicrnn.studio.cli import main

if __name__ == "__main__":
    main()
