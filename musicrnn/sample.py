"""``python -m musicrnn.sample``: the entry point of ``musicrnn.cli.sample``."""
import sys

try:  # Ctrl-C in the first seconds, while torch (and Lightning) load: exit 130, no traceback
    from musicrnn.cli.sample import main
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    main()
