"""The data command line among the others: it is ``musicrnn.data.command`` (it needs nothing above the
data layer, so it lives there and ``python -m musicrnn.data`` runs it without importing upwards)."""
from musicrnn.data.command import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
