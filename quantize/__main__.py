"""Allow ``python -m quantize``."""

from quantize.cli import main

if __name__ == "__main__":
    main()
