"""Guardrails and staged rollouts, pure: statistics, states and the plan's state machine.

Standard library only (and :mod:`lockgate.errors`); the control layer loads summaries and
plans from the database, calls these functions and carries out what they decide.
"""
