"""``python -m seglosses`` runs the command line (also under ``torchrun -m seglosses``)."""

if __name__ == "__main__":
    from seglosses.cli.main import main

    raise SystemExit(main())
