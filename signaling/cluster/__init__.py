"""Scale-out: the public front (`front.py`) places rooms on media nodes and forwards
to them; a media node announces itself (`heartbeat.py`) and publishes its captions
(`fanout.py`), wired in by `media_node.py`; `caption_stream.py` serves any room's
captions from Redis."""
