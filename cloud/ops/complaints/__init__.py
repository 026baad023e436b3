"""Complaints (投诉): graded, with time commitments, escalated when one is missed (issue 18)."""
