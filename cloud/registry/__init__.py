"""The registry of communities, buildings, gateways and devices, and gateway provisioning."""
