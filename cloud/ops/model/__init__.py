"""cloud.ops.model."""
