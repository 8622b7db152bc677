"""strongroom.barrier."""
