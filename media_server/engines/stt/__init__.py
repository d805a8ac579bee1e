"""Speech-to-text: the Protocol in base.py, one module per provider (Whisper, Google),
the failover chain, and the machinery that makes Whisper stream (stream adapter,
decode scheduler, LocalAgreement) and that lets a stream be restarted or replaced
without losing words (recognize_stream, uncovered_audio)."""
