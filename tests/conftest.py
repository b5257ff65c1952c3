"""Fixtures shared by every test area (each area keeps its own conftest.py beside its tests)."""
