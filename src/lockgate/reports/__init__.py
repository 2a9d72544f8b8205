"""Evidence, rendered: release notes from audit entries, the evidence report's text forms,
and the map of controls to frameworks. Pure (standard library only), so the CLI renders
exactly what the API renders."""

from lockgate.reports.frameworks import FRAMEWORK_NOTE, relevant_items
from lockgate.reports.release_notes import NOTE_ACTIONS, describe_serving, release_note
from lockgate.reports.render import render_html, render_markdown

__all__ = [
    "FRAMEWORK_NOTE",
    "NOTE_ACTIONS",
    "describe_serving",
    "relevant_items",
    "release_note",
    "render_html",
    "render_markdown",
]
