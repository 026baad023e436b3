"""Device profiles: what a device model exposes and how its values are encoded.

One package, shared by the edge (decode), the simulators (encode) and the cloud (labels)::

    from device_profiles import Profile, Point, load_profile, builtin_profiles, find_profile, ProfileError
    from device_profiles.codec import encode, decode, decode_raw, encode_raw, ALL_ORDERS
    from device_profiles.payload import encode_payload, decode_payload   # MQTT JSON devices

Built-in profiles live in ``device_profiles/library/*.yaml``; ``guanjia profiles check`` validates
any profile file and prints ``file:line: field: message`` for each problem.
"""

from device_profiles.errors import CodecError, ProfileError
from device_profiles.loader import builtin_profiles, find_profile, load_profile, parse_profile
from device_profiles.model import Hole, ModbusOptions, MqttMapping, Point, Profile

__all__ = [
    "CodecError",
    "Hole",
    "ModbusOptions",
    "MqttMapping",
    "Point",
    "Profile",
    "ProfileError",
    "builtin_profiles",
    "find_profile",
    "load_profile",
    "parse_profile",
]
