"""What is governed: projects, environments, behaviors (flags), segments and their snapshots."""
