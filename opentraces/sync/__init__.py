"""Sync with a private Git remote: status, diff, push, pull, prefetch (DESIGN.md §6)."""
