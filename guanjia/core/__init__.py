"""guanjia.core."""
