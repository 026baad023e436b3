"""Pure codecs of the serial meter protocols: DL/T 645-2007 (electricity) and CJ/T 188-2004 (water).

Why here, in ``device_profiles``: like the one register codec (:mod:`device_profiles.codec`), a
frame codec is shared by two parties that must never disagree — the edge *master* encodes requests
and decodes replies, the simulator *slave* decodes requests and encodes replies. ``device_profiles``
sits below both ``edge`` and ``simulators`` in the house, so this is the one place both may import.
The modules do no I/O and read no clock: bytes in, bytes or typed values out.

Why our own code: no well-kept Python library implements either standard (checked the package
lists: PyPI has ``dlt645`` 3.2 and ``python-dlt645`` 0.1.4, single-author packages without a
release history or tests we could lean on, and nothing for CJ/T 188). Both protocols are small
(one frame layout, a checksum, BCD numbers), so a few hundred lines with property-based tests are
cheaper to trust than a dependency.
"""
