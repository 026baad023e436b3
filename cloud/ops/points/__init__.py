"""Volunteers' points (积分): an append-only ledger, earned per task, adjusted, redeemed (issue 18)."""
