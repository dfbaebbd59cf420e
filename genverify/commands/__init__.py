"""One module per ``genverify`` subcommand; see :mod:`genverify.cli`.

A command is thin: ``add_parser(subparsers)`` declares its flags, ``run(args)``
calls the library and returns an exit code. Library errors name Python
parameters; :func:`genverify.cli.main` renders them as flags (by argparse
``dest``, or the module's ``FLAGS`` mapping where the names differ).

Command modules import the library inside ``run``, not at the top:
``genverify --help`` imports every command module, and must not pay for
SymPy, SciPy or torch.
"""
