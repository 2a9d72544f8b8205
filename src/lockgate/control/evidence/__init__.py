"""What happened: audit queries (and, later, decision records and reports)."""
