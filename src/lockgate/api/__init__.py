"""The HTTP transport: management API, health endpoints; one composition root (app.py)."""
