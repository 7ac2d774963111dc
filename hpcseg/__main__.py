"""`python -m hpcseg` is the same as the `hpcseg` console script."""

from hpcseg.cli import main

if __name__ == "__main__":
    main()
