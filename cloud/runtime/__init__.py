"""cloud.runtime."""
