"""KV engine tests."""
