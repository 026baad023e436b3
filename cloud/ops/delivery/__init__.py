"""cloud.ops.delivery."""
