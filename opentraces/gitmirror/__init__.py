"""The bucket in Git: trail commits, the bucket's mirror refs, replay into clones."""
