"""The ``lockgate`` command line."""
