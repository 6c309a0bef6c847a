"""Deduplicated state checkpoints: chunking, the writer-side chunk store, rebuild and diff.

A checkpoint's state is encoded as MessagePack and split into content-addressed *chunks*:
list items and large values become chunks of their own, named by the xxh3-128 digest of
their (redacted) encoding; their parent holds a 16-byte reference instead. A chunk already
in the ring is referenced, not stored again, so checkpointing a 200-message conversation
that gained one message costs about one message.

Wire format (all inside ordinary events, see docs/FORMAT.md):

* ``"chunk"`` events ``{hash, data}``: ``data`` is the chunk's MessagePack encoding and
  ``hash`` the hex xxh3-128 digest of ``data``. The same chunk may appear several times
  (re-emitted copies); any copy serves.
* Inside chunk data, two MessagePack ext types: ``1`` (16 bytes) is a reference to the
  chunk with that digest; ``2`` holds an array ``[tag, part, ...]`` whose value is the
  concatenation of its parts' values (tag ``"s"`` str, ``"b"`` bytes, ``"l"`` list, ``"d"``
  dict): long lists are split into pages at content-defined boundaries (so that appending
  to, or dropping from the front of, a conversation changes only a page or two), long
  strings and bytes into fixed-size pieces.
* ``"checkpoint"`` events ``{label?, root, inline?, chunks, new, size, stored}``: ``root`` is
  the hex digest of the root chunk, ``inline`` (when the root is stored for the first time)
  the root chunk's data, a copy of that chunk like a ``"chunk"`` event's; ``chunks`` the
  digests of the chunk events this checkpoint stored for the first time (at most 32
  listed; ``new`` counts them all, and an inline root), ``size`` the bytes of the state's
  chunks and ``stored`` the bytes this checkpoint added. A state too large for the ring (its
  chunks over half of it) is not stored: its event is ``{label?, error}``, without ``root``.

Invariant: every checkpoint in the ring (and so in every dump) can be rebuilt from the ring
alone. The writer keeps every chunk still referenced by a checkpoint in the ring in memory
(bounded by the ring's size) and, from a flush listener, re-emits a chunk whose latest copy
lies in a block the next flush may overwrite.

Modules, one job each: ``wire`` (the format's constants, MessagePack helpers and hashes),
``pack`` (a state into chunks), ``walk`` (redaction, memoized across checkpoints, then
packing), ``store`` (the writer side and :func:`checkpoint`), ``rebuild`` (the reader side)
and ``diff`` (what changed between two states).
"""

from __future__ import annotations

from .diff import DiffEntry, diff_states
from .pack import pack_state
from .rebuild import ChunkIndex
from .store import CheckpointStore, checkpoint
from .store import store_for as store_for
from .wire import EXT_CAT, EXT_REF
from .wire import MAX_CHUNK as MAX_CHUNK
from .wire import MIN_CHUNK as MIN_CHUNK
from .wire import PAGE_MAX as PAGE_MAX

__all__ = [
    "EXT_CAT",
    "EXT_REF",
    "CheckpointStore",
    "ChunkIndex",
    "DiffEntry",
    "checkpoint",
    "diff_states",
    "pack_state",
]
