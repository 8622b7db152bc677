"""strongroom.engines.kv."""
