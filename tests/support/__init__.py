"""Plain helper modules that tests import (classes, functions, constants; no fixtures).

Why apart from the fixtures: a conftest is not a module to import from (pytest imports it under its
own rules) and a test module is not a library; fixtures live in ``tests/plugins`` and are
registered once in ``tests/conftest.py``.
"""
