"""Voice activity detection: the Protocol in base.py, one module per provider."""
