"""Planned maintenance (计划维保): checklist templates, plans, the scheduler that opens planned work
orders ahead of their due date, and their completion (checklist, readings, photos, both signatures)."""
