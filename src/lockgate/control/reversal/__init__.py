"""Reversal: the kill switch, targeted rollback and incident mode — immediate and audited."""
