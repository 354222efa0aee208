"""Derived files: everything here is a pure function of events (and blobs)."""
