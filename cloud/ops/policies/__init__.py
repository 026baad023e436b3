"""Per-community policies held in the database: SLA clocks and notification settings (issue 19)."""
