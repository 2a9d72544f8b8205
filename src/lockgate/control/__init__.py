"""Use-cases: authorize, validate, store with the audit entry in one transaction, publish."""
