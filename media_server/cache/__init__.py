"""Translation cache and ephemeral state: base.py, memory.py (default)."""
