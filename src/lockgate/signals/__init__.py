"""Guardrail signals, the pure part: summary rows and their arithmetic, Alertmanager bodies.

Standard library only; the use-cases that store and read these live in
:mod:`lockgate.control.signals`.
"""
