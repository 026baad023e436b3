"""Helpers of the edge end-to-end tests (collector, profiles, Modbus servers, agent config)."""
