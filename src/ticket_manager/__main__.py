"""``python -m ticket_manager``: the same command line as ``ticket-manager``."""

from ticket_manager.cli import main

if __name__ == "__main__":
    main()
