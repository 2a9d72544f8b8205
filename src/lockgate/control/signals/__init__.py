"""Guardrail signals, the use-cases: alert triggers and reading external sources."""
