"""The ``fraudops`` commands, one module per group: each module's ``add_<command>`` adds a sub-parser whose
``func`` takes the parsed arguments and returns the command's one-line JSON summary (``cli.main`` prints it)."""
