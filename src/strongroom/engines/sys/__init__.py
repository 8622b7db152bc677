"""strongroom.engines.sys."""
