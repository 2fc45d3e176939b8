"""``python -m sim``: the pdsim command line."""

from sim.cli import main

if __name__ == "__main__":
    main()
