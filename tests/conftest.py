"""The suite's fixtures are plugin modules under ``tests/plugins`` (registered here, once, for the
whole tree); helpers that tests import are plain modules under ``tests/support``.

- ``services``: a real PostgreSQL and a real Mosquitto on free ports, started for the run
  (``GUANJIA_TEST_DATABASE_URL`` points the tests at an existing server instead);
- ``databases``: one migrated template database per storage mode, copied per test module or per
  test and dropped after;
- ``timeshift``: ``--at INSTANT`` / ``--tz ZONE`` run the session at another wall-clock instant;
- ``own_pg``: a database server a test may stop;
- ``webapp``: the real app and its users for the web, API and security tests;
- ``browser``: that app on uvicorn and a headless Chromium for the Playwright tests;
- ``workorders``, ``receivers``, ``modbus``: fixtures of the operations, notification and
  simulator tests;
- ``fleet``: the remote-command tests' cloud (command dispatcher only) and gateway codes.
"""

pytest_plugins = [
    "tests.plugins.services",
    "tests.plugins.databases",
    "tests.plugins.timeshift",
    "tests.plugins.own_pg",
    "tests.plugins.webapp",
    "tests.plugins.browser",
    "tests.plugins.workorders",
    "tests.plugins.receivers",
    "tests.plugins.modbus",
    "tests.plugins.fleet",
]
