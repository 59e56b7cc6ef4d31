"""The ``lgo`` command: ``main`` assembles the subcommands of the other modules."""
