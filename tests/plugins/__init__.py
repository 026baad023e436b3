"""pytest plugin modules with the suite's fixtures, registered in ``tests/conftest.py``
(``pytest_plugins``): one place per concern instead of per-team conftest files."""
