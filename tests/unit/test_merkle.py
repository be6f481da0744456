"""RFC 9162 hashing and proofs against the transparency-dev/merkle published vectors
(testonly/constants.go and cmd/proofgen/main.go of github.com/transparency-dev/merkle)."""

from __future__ import annotations

import random

import pytest

from provlink.governance.merkle import (
    EMPTY_ROOT,
    Frontier,
    ListSource,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                      "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]


def h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


# (leaf index, tree size, proof) — the Go vectors number leaves from 1
INCLUSION = [
    (0, 1, []),
    (0, 8, h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")),
    (5, 8, h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
    (2, 3, h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (1, 5, h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")),
    (6, 8, h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
    (2, 5, h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")),
    (6, 7, h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")),
]
SOURCE = ListSource([leaf_hash(x) for x in LEAVES])


def test_roots_of_every_prefix() -> None:
    assert EMPTY_ROOT == ROOTS[0]
    frontier = Frontier()
    for size in range(1, 9):
        assert root_hash(SOURCE, size) == ROOTS[size]
        frontier.push(leaf_hash(LEAVES[size - 1]))
        assert frontier.root() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(SOURCE, index, size) == proof
    leaf = leaf_hash(LEAVES[index])
    assert verify_inclusion(index, size, leaf, proof, ROOTS[size])
    assert not verify_inclusion(index, size, leaf_hash(b"other"), proof, ROOTS[size])
    if proof:
        assert not verify_inclusion(index, size, leaf, proof[:-1], ROOTS[size])
        assert not verify_inclusion(index, size, leaf, [*proof, proof[0]], ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_vectors(old: int, new: int, proof: list[bytes]) -> None:
    assert consistency_proof(SOURCE, old, new) == proof
    assert verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)
    if old != new:
        assert not verify_consistency(old, new, ROOTS[new], ROOTS[old], proof)  # swapped
        assert not verify_consistency(old, new, ROOTS[old], ROOTS[new], proof[:-1])


def test_every_proof_of_random_trees_verifies_and_nothing_else_does() -> None:
    rng = random.Random(7)
    leaves = [leaf_hash(rng.randbytes(rng.randrange(40))) for _ in range(70)]
    source = ListSource(leaves)
    for size in range(1, 71):
        root = root_hash(source, size)
        for index in range(size):
            proof = inclusion_proof(source, index, size)
            assert verify_inclusion(index, size, leaves[index], proof, root)
            assert not verify_inclusion(index, size, leaves[(index + 1) % 70], proof, root) \
                or leaves[(index + 1) % 70] == leaves[index]
        for old in range(size + 1):
            proof = consistency_proof(source, old, size)
            assert verify_consistency(old, size, root_hash(source, old), root, proof)
            if 0 < old < size:
                assert not verify_consistency(old, size, root_hash(source, old), leaves[0], proof)


def test_frontier_reports_the_perfect_subtrees_it_completes() -> None:
    nodes: dict[tuple[int, int], bytes] = {}
    frontier = Frontier()
    for x in LEAVES:
        frontier.push(leaf_hash(x), lambda lv, ix, hh: nodes.__setitem__((lv, ix), hh))
    assert nodes[(3, 0)] == ROOTS[8]
    assert nodes[(2, 1)].hex() == "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
    assert Frontier.levels_of(7) == [(2, 0), (1, 2), (0, 6)]
