"""Lets `python -m mlrun_cli` behave exactly like the `mlrun` console script."""

from mlrun_cli.cli import main

if __name__ == "__main__":
    main()
