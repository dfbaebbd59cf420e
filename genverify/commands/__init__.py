"""One module per ``genverify`` subcommand; see :mod:`genverify.cli`."""
