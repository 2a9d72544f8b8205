"""How changes are decided: planned changes, postures, change requests and approvals."""
