"""`python -m adapter` runs the same command as the `prometheus-adapter` script."""

from adapter.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
