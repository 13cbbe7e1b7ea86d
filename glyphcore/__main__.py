"""``python -m glyphcore``: the headless command line."""

from glyphcore.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
