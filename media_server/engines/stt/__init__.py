"""Speech-to-text: the Protocol in base.py, one module per provider."""
