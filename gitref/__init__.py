"""gitref: plumbing that maps data onto Git objects and refs with pygit2."""

from .errors import GitrefError, NotFoundError, ObjectTypeError
from .guard import WouldLoseError, guarded_update, is_ancestor, lost_commit_keys, lost_tree_paths, only_in
from .objects import Identity, InvalidObjectError, UnsafeNameError, object_id
from .packs import (
    PackError,
    consolidate_packs,
    loose_object_count,
    pack_count,
    pack_paths,
    pack_refs,
    packs_size,
    prune_repack,
)
from .packwriter import ObjectWriter
from .refs import (
    InvalidRefNameError,
    RefConflictError,
    RefLockedError,
    RefUpdateError,
    append_commit,
    delete_ref,
    get_ref,
    list_refs,
    update_ref,
)
from .remote import PushResult, RemoteError, RemoteRefRejected, push_ref, remote_refs
from .repo import NotARepositoryError, open_or_init_bare, open_repo, set_head
from .trees import PathConflictError, build_tree, iter_tree, read_blob, read_tree

__all__ = [
    "GitrefError",
    "Identity",
    "InvalidObjectError",
    "InvalidRefNameError",
    "NotARepositoryError",
    "NotFoundError",
    "ObjectTypeError",
    "ObjectWriter",
    "PackError",
    "PathConflictError",
    "RefConflictError",
    "RefLockedError",
    "RefUpdateError",
    "UnsafeNameError",
    "append_commit",
    "build_tree",
    "consolidate_packs",
    "delete_ref",
    "get_ref",
    "iter_tree",
    "list_refs",
    "loose_object_count",
    "object_id",
    "open_or_init_bare",
    "open_repo",
    "pack_count",
    "pack_paths",
    "pack_refs",
    "packs_size",
    "prune_repack",
    "read_blob",
    "read_tree",
    "set_head",
    "PushResult",
    "RemoteError",
    "RemoteRefRejected",
    "push_ref",
    "remote_refs",
    "update_ref",
    "WouldLoseError",
    "guarded_update",
    "is_ancestor",
    "lost_commit_keys",
    "lost_tree_paths",
    "only_in",
]
