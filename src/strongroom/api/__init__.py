"""strongroom.api."""
