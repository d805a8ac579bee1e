"""Text translation: the Protocol in base.py, one module per provider."""
