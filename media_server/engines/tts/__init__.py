"""Text-to-speech: the Protocol in base.py, one module per provider."""
