"""``python -m vecml_async.cli``: the ``vecml-async`` command."""

from vecml_async.cli import main

main()
