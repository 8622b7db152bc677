"""strongroom.cli."""
