"""Pure policy: who may do what, and (later) which changes need approval. Stdlib only."""
