"""A data folder with no usable file: the error names each file's actual reason (drums only, no notes,
not MIDI, line-ending damage) and suggests ``data repair`` only for line-ending damage."""
from __future__ import annotations

import io

import pytest

from cli_checks import TINY, exit_code, one_error, snapshot
from musicrnn.cli import fit
from musicrnn.data.cache import SAMPLE_ROOT

SAMPLE_FILES = sorted(SAMPLE_ROOT.rglob("*.midi"))


def _midi(drums: bool, notes: int) -> bytes:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    if notes:
        inst = pretty_midi.Instrument(0, is_drum=drums)
        inst.notes += [pretty_midi.Note(90, 36 + i % 10, 0.1 * i, 0.1 * i + 0.05) for i in range(notes)]
        pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def _line_ending_damaged() -> bytes:
    from test_midifile import damage, with_crlf

    return damage(with_crlf(SAMPLE_FILES[0].read_bytes()))


@pytest.mark.parametrize("content, reason, repair", [
    (lambda: _midi(drums=True, notes=20), "drums only", False),
    (lambda: _midi(drums=False, notes=0), "no notes", False),
    (lambda: b"these are my notes, not MIDI\n", "not a Standard MIDI File", False),
    (_line_ending_damaged, "line-ending damage", True),
])
def test_unreadable_folder_names_each_files_reason_and_suggests_repair_only_for_line_endings(
        run_dir, capsys, content, reason, repair):
    folder = run_dir / "data"
    folder.mkdir()
    (folder / "only.mid").write_bytes(content())
    before = snapshot(run_dir)
    code = exit_code(fit.main, [*TINY, "--data.root", str(folder)])
    line = one_error(capsys, code, "only.mid", reason)
    assert ("musicrnn.data repair" in line) == repair, line
    if not repair:
        assert "--data.root" in line
    assert snapshot(run_dir) == before
