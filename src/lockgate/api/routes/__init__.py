"""HTTP routes, one module per resource family; each parses, calls one use-case, renders."""
