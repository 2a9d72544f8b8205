"""Use-cases that govern what AI agents may do: the tool registry and the tool tier policy."""
