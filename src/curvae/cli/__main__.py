"""``python -m curvae.cli``: the same command line as ``curvae``."""

from curvae.cli import main

if __name__ == "__main__":
    main()
