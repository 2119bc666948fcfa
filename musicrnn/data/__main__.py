"""``python -m musicrnn.data``: the data command line (``musicrnn.data.command``)."""
from musicrnn.data.command import main

if __name__ == "__main__":
    main()
