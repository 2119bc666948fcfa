"""``python -m musicrnn.fit``: the entry point of ``musicrnn.cli.fit``."""
import sys

try:  # Ctrl-C in the first seconds, while torch (and Lightning) load: exit 130, no traceback
    from musicrnn.cli.fit import main
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    main()
