"""cloud.ops."""
