"""Bucket maintenance verbs: status, verify, repair/rebuild, prune."""
