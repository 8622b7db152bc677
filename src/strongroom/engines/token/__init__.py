"""strongroom.engines.token."""
