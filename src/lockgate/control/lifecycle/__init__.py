"""Clean-up of temporary behaviors: their lifecycle, cleanup rules, stale detection, code
references, archiving and restoring.

``facts`` reads what the pure :mod:`lockgate.lifecycle` derives from (configuration
history, evaluation counts, guardrail breaches, marks); ``marks`` records cleanup-due and
runs the ``cleanup-rules`` job; ``archive`` archives and restores through the governed
definition change; ``coderefs`` stores uploaded scans; ``report`` answers what is due,
stale or referenced but gone, per owner.
"""
