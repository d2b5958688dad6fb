"""pytest plugin: fixtures that start the sandbox (filled in by the sandbox work).

Registered through the ``pytest11`` entry point, so it must import without the
``sandbox`` extra installed: import the server lazily inside fixtures.
"""
