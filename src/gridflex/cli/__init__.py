"""The ``gridflex`` command: one entry point, one sub-command module per stage.

Modules here hold no logic: they parse arguments, call the Python API, and print. They import heavy
dependencies inside the command functions so ``gridflex --help`` stays fast.
"""
