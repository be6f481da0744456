"""RFC 9162 §2.1 Merkle tree hashing, inclusion and consistency proofs, written out.

Why by hand: the Python Merkle packages on PyPI are either unmaintained, use their own
(non-RFC) hashing, or build the whole tree in memory; the reference implementations
(transparency-dev/merkle, Trillian) are Go. The algorithms are short and are checked in
``tests/unit/test_merkle.py`` against the published transparency-dev/merkle vectors.

Hashing: ``leaf = SHA-256(0x00 || data)``, ``node = SHA-256(0x01 || left || right)``, the
empty tree hashes to ``SHA-256("")``; a tree of ``n > 1`` leaves splits at ``k``, the largest
power of two below ``n``.

Proofs read the tree through a :class:`NodeSource`: ``perfect(level, index)`` gives the
hash of the complete subtree of ``2**level`` leaves starting at leaf ``index * 2**level``.
Every subtree an RFC 9162 proof needs is either such a perfect subtree or a right edge
made of O(log n) of them, so a store that caches perfect subtrees answers any proof at
10^6 leaves with a few dozen look-ups (:class:`Frontier` fills that cache as leaves come).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


class NodeSource(Protocol):
    def perfect(self, level: int, index: int) -> bytes:
        """Hash of leaves ``[index << level, (index + 1) << level)``; level 0 is a leaf hash."""


class ListSource:
    """A :class:`NodeSource` over leaf hashes held in memory (tests, small trees, verify)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.levels: list[list[bytes]] = [list(leaves)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([node_hash(below[i], below[i + 1])
                                for i in range(0, len(below) - 1, 2)])

    def perfect(self, level: int, index: int) -> bytes:
        return self.levels[level][index]


def subtree_hash(source: NodeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for ``start`` aligned to the largest power of two ≤ ``end-start``
    (every subtree RFC 9162 proofs and roots ask for is)."""
    size = end - start
    if size == 0:
        return EMPTY_ROOT
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return source.perfect(level, start >> level)
    k = split_point(size)
    return node_hash(subtree_hash(source, start, start + k), subtree_hash(source, start + k, end))


def root_hash(source: NodeSource, size: int) -> bytes:
    return subtree_hash(source, 0, size)


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            proof.append(subtree_hash(source, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(source, start, start + k))
            start += k
    proof.reverse()
    return proof


def consistency_proof(source: NodeSource, old: int, new: int) -> list[bytes]:
    """PROOF(old, D[0:new]) of RFC 9162 §2.1.4.1 (empty when ``old`` is 0 or ``new``)."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from size {old} to {new}")
    if old in (0, new):
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, new, old, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(subtree_hash(source, start, end))
            break
        k = split_point(n)
        if m <= k:
            proof.append(subtree_hash(source, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(source, start, start + k))
            start, m, complete = start + k, m - k, False
    proof.reverse()
    return proof


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root a valid inclusion proof implies (RFC 9162 §2.1.3.2); raises ValueError."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ValueError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> bool:
    try:
        return root_from_inclusion(index, size, leaf, proof) == root
    except ValueError:
        return False


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: whether the tree of ``new`` leaves extends the one of ``old``."""
    if not 0 <= old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node of the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


class Frontier:
    """The compact range of a growing tree: the perfect subtrees along its right edge.

    ``push`` adds one leaf hash and reports, through ``on_node``, every perfect subtree it
    completes (at most log n, one on average), which is what a store caches. ``root()`` is
    then O(log n) hashes without touching storage.
    """

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.hashes = list(hashes)  # left to right, one per set bit of size, big to small
        if len(self.hashes) != size.bit_count():
            raise ValueError(f"a frontier of {size} leaves has {size.bit_count()} hashes")

    @staticmethod
    def levels_of(size: int) -> list[tuple[int, int]]:
        """(level, index) of the frontier's perfect subtrees for a tree of ``size``."""
        out, start = [], 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                out.append((level, start >> level))
                start += 1 << level
        return out

    def push(self, leaf: bytes, on_node: Callable[[int, int, bytes], None] | None = None) -> None:
        index, h, level = self.size, leaf, 0
        self.size += 1
        while index & 1:
            h = node_hash(self.hashes.pop(), h)
            level, index = level + 1, index >> 1
            if on_node is not None:
                on_node(level, index, h)
        self.hashes.append(h)

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        h = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            h = node_hash(left, h)
        return h
