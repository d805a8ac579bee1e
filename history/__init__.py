"""What is kept: finals with their translations, and sessions (who was in which room,
in which languages, when), in SQLite or PostgreSQL, written behind the caption path."""
