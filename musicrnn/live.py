"""``python -m musicrnn.live``: the entry point of ``musicrnn.cli.live``."""
import sys

try:  # Ctrl-C in the first seconds, while the libraries load: exit 130, no traceback
    from musicrnn.cli.live import main
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    main()
