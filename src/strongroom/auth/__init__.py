"""strongroom.auth."""
