"""``python -m infogan.train``: train an InfoGAN from the command line (``infogan.cli.main``).

The loop itself is ``infogan.loop.train``; every config key is a flag (``--help``).
"""

from infogan.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
