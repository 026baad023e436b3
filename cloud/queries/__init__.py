"""cloud.queries."""
