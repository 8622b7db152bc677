"""strongroom.core."""
