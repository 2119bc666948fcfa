"""``python -m musicrnn.data repair FILE DST``: one damaged file is repaired to DST (SRC untouched), an
intact one is copied, and a file that is not MIDI is one ``error:`` line with nothing written."""
from __future__ import annotations

import json

import pytest

from helpers import MAESTRO_FILE
from musicrnn.cli.data import main as data_main
from musicrnn.notes import Notes


def _crlf_midi(path) -> bytes:
    """A real MIDI file whose bytes contain CR-LF (a note of pitch 13, velocity 10: 0x0D 0x0A)."""
    Notes.from_arrays([60, 13, 64], [0.0, 0.5, 1.0], [0.4, 0.9, 1.4], [80, 10, 90]).to_midi(path)
    data = path.read_bytes()
    assert b"\r\n" in data
    return data


def test_repair_one_damaged_file(tmp_path, capsys):
    good = _crlf_midi(tmp_path / "good.mid")
    src = tmp_path / "in" / "damaged.mid"
    src.parent.mkdir()
    src.write_bytes(good.replace(b"\r\n", b"\n"))  # the CR-LF -> LF damage
    damaged = src.read_bytes()
    data_main(["repair", str(src), str(tmp_path / "out") + "/"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["status"] == "repaired" and (tmp_path / "out" / "damaged.mid").read_bytes() == good
    assert src.read_bytes() == damaged  # SRC is never touched


def test_repair_one_intact_file_to_a_file_name(tmp_path, capsys):
    data_main(["repair", str(MAESTRO_FILE), str(tmp_path / "copy.midi")])
    assert json.loads(capsys.readouterr().out)["status"] == "intact"
    assert (tmp_path / "copy.midi").read_bytes() == MAESTRO_FILE.read_bytes()


def test_repair_of_a_text_file_is_one_line_and_writes_nothing(tmp_path, capsys):
    src = tmp_path / "notes.mid"
    src.write_text("not a MIDI file at all\n")
    with pytest.raises(SystemExit) as e:
        data_main(["repair", str(src), str(tmp_path / "out.mid")])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and "notes.mid" in err[0], err
    assert not (tmp_path / "out.mid").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["notes.mid"]
