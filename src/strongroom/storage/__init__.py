"""strongroom.storage."""
