"""``python -m musicrnn.data``: the data command line (``musicrnn.data.command``)."""
import sys

try:  # Ctrl-C in the first seconds, while the libraries load: exit 130, no traceback
    from musicrnn.data.command import main
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    main()
