"""guanjia (管家): IoT edge gateway and cloud platform for residential property management.

This top-level package holds only what both tiers speak: the wire contract, typed settings,
YAML config loading with file/line errors, backoff, the local service stack and the CLI.
`edge` and `cloud` import from here, never from each other.
"""

__version__ = "0.1.0"
