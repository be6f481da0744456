"""Registry anchors: a model version's tags name the ledger leaf of the event that
registered it and a checkpoint covering that leaf, so the registry holds a copy of the
log's state away from the machine.

Tags (``provlink.ledger.*``): ``leaf`` (index), ``leaf_hash`` (hex, also kept under the
older ``provlink.ledger_entry``) and ``checkpoint`` (the C2SP note). :func:`check_anchor`
compares them with the local log: a leaf or checkpoint the log no longer has, a root that
differs (the log was rewritten), a leaf hash that differs while the root agrees (the tag
was changed), or no anchor on a version provlink registered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from provlink.governance.log import Ledger
from provlink.governance.merkle import leaf_hash, verify_inclusion
from provlink.governance.note import NoteError, Verifier, parse_checkpoint

TAG_LEAF = "provlink.ledger.leaf"
TAG_LEAF_HASH = "provlink.ledger.leaf_hash"
TAG_CHECKPOINT = "provlink.ledger.checkpoint"
TAG_LEDGER_ENTRY = "provlink.ledger_entry"
TAG_RUN_ID = "openlineage.run_id"


@dataclass(frozen=True, slots=True)
class AnchorProblem:
    model: str
    leaf: int | None
    what: str  # "anchor missing" | "registry tag changed" | "rewritten" | "truncated" | ...
    detail: str

    def __str__(self) -> str:
        return f"{self.model}: {self.what}: {self.detail}"


def anchor_tags(leaf: int, leaf_hash_hex: str, checkpoint_note: str) -> dict[str, str]:
    return {TAG_LEAF: str(leaf), TAG_LEAF_HASH: leaf_hash_hex, TAG_CHECKPOINT: checkpoint_note,
            TAG_LEDGER_ENTRY: leaf_hash_hex}


def check_anchor(ledger: Ledger, model: str, tags: Mapping[str, str],
                 verifier: Verifier | None = None) -> AnchorProblem | None:
    """The first thing wrong with one version's anchor, or None when it agrees."""
    if TAG_LEAF not in tags:
        if tags.get(TAG_RUN_ID):
            return AnchorProblem(model, None, "anchor missing", "provlink registered it "
                                 f"(run {tags[TAG_RUN_ID]}) but it has no {TAG_LEAF} tag")
        return None
    try:
        index, tagged = int(tags[TAG_LEAF]), bytes.fromhex(tags.get(TAG_LEAF_HASH, ""))
        cp, note = parse_checkpoint(tags.get(TAG_CHECKPOINT, ""))
    except (ValueError, NoteError) as exc:
        return AnchorProblem(model, None, "registry tag changed", f"unreadable anchor: {exc}")
    if cp.origin != ledger.origin:
        return None  # another log's anchor: checked against that log
    if verifier is not None and (note is None or not note.signed_by(verifier)):
        return AnchorProblem(model, index, "bad signature", "its checkpoint is not signed by "
                             f"{verifier.name}")
    size = ledger.size()
    if size < cp.size:
        return AnchorProblem(model, index, "truncated", f"its checkpoint covers {cp.size} "
                             f"entries, the log has {size}")
    if ledger.root(cp.size) != cp.root:
        return AnchorProblem(model, index, "rewritten", f"the log's root at {cp.size} entries "
                             "differs from the checkpoint on the model version")
    leaf = ledger.leaf(index)
    if leaf is None:
        return AnchorProblem(model, index, "missing", f"leaf {index} is not in the log")
    proof = ledger.inclusion(index, cp.size)
    if not verify_inclusion(index, cp.size, tagged, proof, cp.root):
        return AnchorProblem(model, index, "registry tag changed", f"{TAG_LEAF_HASH} is not "
                             f"leaf {index} of the checkpoint")
    if leaf_hash(leaf[1].encode()) != tagged:
        return AnchorProblem(model, index, "edited", f"leaf {index}'s entry changed")
    run_id = tags.get(TAG_RUN_ID)
    if run_id and json.loads(leaf[1]).get("run_id") != run_id:
        return AnchorProblem(model, index, "registry tag changed", f"{TAG_RUN_ID} is not the "
                             f"run of leaf {index}")
    return None
