"""Bucket security: redaction tools and the policies that switch them (DESIGN.md §7)."""
