"""C2SP signed notes, checkpoints and cosignatures, checked against the spec's example."""

from __future__ import annotations

import pytest

from provlink.governance.note import (
    COSIGNATURE_V1,
    Checkpoint,
    Note,
    NoteError,
    Signer,
    Verifier,
    parse_checkpoint,
)

# https://c2sp.org/signed-note, "Example"
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = ("This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1"
             "YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n")


def test_the_spec_example_verifies_and_a_changed_text_does_not() -> None:
    verifier = Verifier.parse(SPEC_VKEY)
    assert verifier.vkey == SPEC_VKEY and verifier.key_id.hex() == "530d903a"
    note = Note.parse(SPEC_NOTE)
    assert note.text == "This is an example message.\n"
    assert note.signed_by(verifier) is True
    assert Note.parse(SPEC_NOTE.replace("example message", "example massage")).signed_by(
        verifier) is False
    other = Signer("example.com/bar", bytes(32)).verifier()
    assert note.signed_by(other) is None  # an unknown key's signature is ignored


def test_private_keys_round_trip_in_the_go_note_format() -> None:
    signer = Signer("example.com/log", bytes(range(32)))
    text = signer.encoded()
    assert text.startswith("PRIVATE+KEY+example.com/log+")
    again = Signer.parse(text)
    assert again.public == signer.public
    with pytest.raises(NoteError):
        Signer.parse(text[:-4] + "AAAA")  # key id no longer matches


def test_checkpoints_and_cosignatures() -> None:
    log = Signer("example.com/log", bytes(range(32)))
    witness = Signer("example.com/witness", bytes(range(1, 33)))
    cp = Checkpoint(origin="example.com/log", size=3, root=bytes(32), time_ms=1700000000000)
    note = cp.note(log)
    parsed, signed = parse_checkpoint(note)
    assert parsed == cp and signed is not None and signed.signed_by(log.verifier())
    cosigned = signed.render(witness.cosign_line(cp.text, 1700000001))
    both = Note.parse(cosigned)
    assert both.signed_by(log.verifier()) and both.signed_by(witness.verifier(COSIGNATURE_V1))
    assert both.signed_by(witness.verifier()) is None  # a 0x04 cosignature is not a 0x01 one
    assert parse_checkpoint(cp.note(None)) == (cp, None)
    with pytest.raises(NoteError):
        Checkpoint.from_text("example.com/log\n03\nAAAA\n")
