"""strongroom.engines."""
