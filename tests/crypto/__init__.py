"""Tests of strongroom.crypto."""
