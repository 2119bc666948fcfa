"""The command lines: thin modules that parse options (shared groups in ``options``), call the
layers below and print. A CLI never imports another CLI."""
