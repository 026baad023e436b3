"""guanjia.app."""
