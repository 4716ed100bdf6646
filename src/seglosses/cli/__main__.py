"""``python -m seglosses.cli`` runs the command line, like ``python -m seglosses``."""

if __name__ == "__main__":
    from seglosses.cli.main import main

    raise SystemExit(main())
