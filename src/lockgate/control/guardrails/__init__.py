"""Guardrails and staged rollouts: their definitions (governed writes), and the background
cycle that evaluates them and acts as the ``system:guardrails`` actor."""
