"""Raw-MIDI layer: strict event-level check, line-ending repair, tree repair, hostile inputs."""
from __future__ import annotations

import csv
import io
import json
import random
import struct
from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musicrnn.errors import ConfigError, MidiError
from musicrnn.midi.check import check_chunks, read_checked
from musicrnn.midi.repair import repair_bytes
from musicrnn.midi.tree import repair_tree

# Small MAESTRO files (bytes) chosen once: intact ones, and line-ending-damaged ones.
INTACT = [
    "2008/MIDI-Unprocessed_14_R1_2008_01-05_ORIG_MID--AUDIO_14_R1_2008_wav--1.midi",
    "2011/MIDI-Unprocessed_08_R1_2011_MID--AUDIO_R1-D3_07_Track07_wav.midi",
]
DAMAGED = [
    "2017/MIDI-Unprocessed_059_PIANO059_MID--AUDIO-split_07-07-17_Piano-e_2-03_wav--3.midi",
    "2013/ORIG-MIDI_02_7_7_13_Group__MID--AUDIO_19_R1_2013_wav--3.midi",
    "2004/MIDI-Unprocessed_XP_14_R1_2004_04_ORIG_MID--AUDIO_14_R1_2004_06_Track06_wav.midi",
]


def damage(data: bytes) -> bytes:
    """What the CR-LF -> LF conversion did to MAESTRO: drop every 0x0D that precedes 0x0A."""
    return data.replace(b"\r\n", b"\n")


def durations(root: Path) -> dict[str, float]:
    with open(root / "maestro-v2.0.0.csv", newline="") as f:
        return {r["midi_filename"]: float(r["duration"]) for r in csv.DictReader(f)}


def track(*events: bytes) -> bytes:
    body = b"".join(events)
    return b"MTrk" + struct.pack(">I", len(body)) + body


def smf(*tracks: bytes, ntracks: int | None = None) -> bytes:
    n = len(tracks) if ntracks is None else ntracks
    return b"MThd" + struct.pack(">IHHH", 6, 1, n, 384) + b"".join(tracks)


EOT = b"\x00\xff\x2f\x00"


def with_crlf(data: bytes, points: int = 3) -> bytes:
    """A well-formed variant of ``data`` that contains CR-LF pairs (a ground truth to damage).

    Some note-ons get velocity 13 and the next event a delta of 10 ticks: bytes 0D 0A.
    """
    mid = mido.MidiFile(file=io.BytesIO(data))
    msgs = mid.tracks[1]
    every = len(msgs) // (points + 1)
    for k0 in range(every, len(msgs) - 1, every):
        k = next(k for k in range(k0, len(msgs) - 1) if msgs[k].type == "note_on" and msgs[k].velocity > 0)
        msgs[k].velocity, msgs[k + 1].time = 13, 10
    out = io.BytesIO()
    mid.save(file=out)
    return out.getvalue()


# --- the check --------------------------------------------------------------------------------


def test_minimal_file_passes():
    check_chunks(smf(track(b"\x00\x90\x3c\x40\x10\x3c\x00" + EOT)))  # with running status


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (bytes(range(256)) * 4, "not a Standard MIDI File"),
        (b"MThd" + struct.pack(">IHHH", 6, 1, 1, 384), "1 tracks, file has 0"),
        (smf(ntracks=0), "no tracks"),
        (smf(track(b"\x00\x90\x3c\x40" + EOT))[:-3], "cut off 3 bytes before"),
        (smf(track(b"\x00\x90\x3c\x40" + EOT))[:20], "truncated"),
        (smf(b"MTrk" + struct.pack(">I", 99) + b"\x00\x90\x3c\x40" + EOT), "length field is wrong"),
        (smf(b"MTrk" + struct.pack(">I", 4) + b"\x00\x90\x3c\x40" + EOT), "malformed"),
        (smf(track(b"\x00\x3c\x40" + EOT)), "running status without"),
        (smf(track(b"\x00\x90\x3c\xc0" + EOT)), "data byte 0xC0"),
        (smf(track(b"\x00\x90\x3c\x40" + EOT + b"\x00\x90\x3c\x00")), "ends 4 bytes before"),
        (smf(track(b"\x00\x90\x3c\x40")), "no end-of-track"),
        (smf(track(b"\x00\xf1\x00" + EOT)), "invalid status byte"),
        (smf(track(b"\xff\xff\xff\xff\x00" + EOT)), "longer than 4 bytes"),
        (smf(track(b"\x00\xff\x03\x7f" + b"ab" + EOT)), "malformed"),
        (b"MThd" + struct.pack(">IHHH", 6, 7, 1, 384) + track(EOT), "bad MIDI header"),
    ],
)
def test_bad_inputs_raise_one_line_midi_error(data, words):
    with pytest.raises(MidiError) as e:
        check_chunks(data, "x.mid")
    msg = str(e.value)
    assert words in msg and msg.startswith("x.mid: ") and "\n" not in msg


ONE_NOTE = b"\x00\x90\x3c\x0d\x0a\x80\x3c\x40" + EOT  # velocity 13, then a delta of 10 ticks: bytes 0D 0A


@pytest.mark.parametrize(
    "data, words",
    [
        (damage(smf(track(ONE_NOTE))), "track 0 is 1 byte shorter than its header says (line-ending damage"),
        (damage(smf(track(b"\x00\xff\x01\x01a" + ONE_NOTE), track(ONE_NOTE))), "track 0 "),
    ],
)
def test_line_ending_damage_is_named_with_the_repair(data, words):
    with pytest.raises(MidiError) as e:
        check_chunks(data, "x.mid")
    assert words in str(e.value) and "musicrnn.data repair" in str(e.value)


@pytest.mark.parametrize(
    "data, words",
    [
        # a track length field far beyond the events: no 0x0A bytes could have lost their 0x0D
        (smf(b"MTrk" + struct.pack(">I", 1000) + ONE_NOTE), "ends 988 bytes before the length its header gives"),
        (smf(track(b"\x00\x90\x3c\x40\x10\x3c\x00" + EOT))[:-2], "cut off 2 bytes"),
        (smf(track(b"\x00\xff\x51\x03\x00\x00\x00" + ONE_NOTE)), "a tempo of 0 microseconds per beat"),
        (b"MThd" + struct.pack(">IHHH", 6, 0, 1, 0) + track(ONE_NOTE), "time division is 0 ticks per beat"),
    ],
)
def test_other_damage_is_not_called_line_ending_damage(data, words):
    """Only bytes that CR-LF -> LF damage can explain get that name and the repair hint."""
    with pytest.raises(MidiError) as e:
        check_chunks(data, "x.mid")
    msg = str(e.value)
    assert words in msg and "line-ending" not in msg and "repair" not in msg and "\n" not in msg


def test_zero_tempo_or_division_is_a_midi_error_not_a_division_by_zero(tmp_path):
    from musicrnn.notes import Notes

    for name, data in (("tempo0.mid", smf(track(b"\x00\xff\x51\x03\x00\x00\x00" + ONE_NOTE))),
                       ("division0.mid", b"MThd" + struct.pack(">IHHH", 6, 0, 1, 0) + track(ONE_NOTE))):
        (tmp_path / name).write_bytes(data)
        for fast in (True, False):
            with pytest.raises(MidiError, match=f"{name}: .* 0 .*re-download it"):
                Notes.from_midi(tmp_path / name, fast=fast)


def test_read_checked_missing_and_folder(tmp_path):
    with pytest.raises(MidiError, match="no such MIDI file"):
        read_checked(tmp_path / "nope.mid")
    with pytest.raises(MidiError, match="is a folder"):
        read_checked(tmp_path)


@pytest.mark.parametrize("data", [b"", b"MThd", bytes(64), smf(track(b"\x00\x3c\x40" + EOT))])
def test_repair_bytes_refuses_non_midi(data):
    with pytest.raises(MidiError):
        repair_bytes(data, 10.0, "x.mid")


# --- real MAESTRO files -----------------------------------------------------------------------


@pytest.mark.maestro
def test_intact_files_pass_and_repair_is_identity(maestro_root):
    for rel in INTACT:
        data = read_checked(maestro_root / rel)
        assert b"\r\n" not in data  # every MAESTRO file with CR-LF was damaged
        assert repair_bytes(data, None, rel) is data


@pytest.mark.maestro
def test_synthetic_damage_is_detected_and_restored_byte_exactly(maestro_root):
    for rel in INTACT:
        truth = with_crlf((maestro_root / rel).read_bytes())
        check_chunks(truth, rel)
        broken = damage(truth)
        assert 1 <= len(truth) - len(broken) <= 3
        with pytest.raises(MidiError, match=r"shorter than its header says.*repair"):
            check_chunks(broken, rel)
        mid = mido.MidiFile(file=io.BytesIO(truth))
        seconds = max(t for t, m in _timed(mid) if m.type in ("note_on", "note_off"))
        assert repair_bytes(broken, seconds, rel) == truth


def _timed(mid):
    t = 0.0
    for m in mid:
        t += m.time
        yield t, m


@pytest.mark.maestro
def test_real_damaged_files_repair_and_load(maestro_root):
    import pretty_midi

    dur = durations(maestro_root)
    for rel in DAMAGED:
        data = (maestro_root / rel).read_bytes()
        with pytest.raises(MidiError, match="shorter than its header says"):
            check_chunks(data, rel)
        fixed = repair_bytes(data, dur[rel], rel)
        check_chunks(fixed, rel)
        assert damage(fixed) == data  # only 0x0D bytes before 0x0A were added
        pm = pretty_midi.PrettyMIDI(io.BytesIO(fixed))
        assert abs(pm.instruments[0].notes[-1].end - dur[rel]) < 1.0


@pytest.mark.maestro
def test_repair_tree_report_and_source_untouched(maestro_root, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    rows = [r for r in csv.DictReader(open(maestro_root / "maestro-v2.0.0.csv"))
            if r["midi_filename"] in INTACT + DAMAGED]
    for rel in INTACT + DAMAGED:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes((maestro_root / rel).read_bytes())
    (src / "junk").mkdir()
    (src / "junk" / "noise.mid").write_bytes(bytes(random.Random(0).randrange(256) for _ in range(300)))
    with open(src / "maestro-v2.0.0.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}

    report = repair_tree(src, dst, progress=False, jobs=1)

    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before
    assert report["files"] == 6 and report["intact"] == 2 and report["repaired"] == 3
    assert report["unrepairable"] == 1 and report["unrepairable_files"][0]["file"] == "junk/noise.mid"
    assert json.loads((dst / "repair_report.json").read_text()) == report
    assert (dst / "maestro-v2.0.0.csv").read_bytes() == (src / "maestro-v2.0.0.csv").read_bytes()
    assert not (dst / "junk" / "noise.mid").exists()
    for rel in INTACT + DAMAGED:
        check_chunks((dst / rel).read_bytes(), rel)
    for rel in INTACT:
        assert (dst / rel).read_bytes() == (src / rel).read_bytes()


def test_repair_tree_refuses_destination_inside_source(tmp_path):
    with pytest.raises(ConfigError, match="inside the source"):
        repair_tree(tmp_path, tmp_path / "out", progress=False)


@pytest.fixture(scope="module")
def small_real(request):
    root = request.getfixturevalue("maestro_root")
    return (root / INTACT[0]).read_bytes()


@pytest.mark.maestro
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_real_file_only_raises_midi_error(small_real, data):
    buf = bytearray(small_real)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        pos = data.draw(st.integers(0, len(buf) - 1))
        if op == "flip":
            buf[pos] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del buf[pos : pos + data.draw(st.integers(1, 8))]
        elif op == "insert":
            buf[pos:pos] = bytes(data.draw(st.lists(st.integers(0, 255), min_size=1, max_size=4)))
        else:
            del buf[pos:]
        if not buf:
            break
    try:
        check_chunks(bytes(buf), "m.mid")
    except MidiError:
        pass


# The three damaged files with most restorations (458,640 / 1,742,832 / 781,440 well-formed ones):
# one has the fewest musical anomalies, found by a Viterbi pass without enumerating them, and it ends
# where the CSV says. Golden: SHA-256 prefixes of the restored bytes.
HARD = {
    "2014/MIDI-UNPROCESSED_04-07-08-10-12-15-17_R2_2014_MID--AUDIO_04_R2_2014_wav.midi": "6d981d30a142",
    "2014/MIDI-UNPROCESSED_04-07-08-10-12-15-17_R2_2014_MID--AUDIO_12_R2_2014_wav.midi": "92e97495b9d2",
    "2014/MIDI-UNPROCESSED_11-13_R1_2014_MID--AUDIO_11_R1_2014_wav--3.midi": "150558b6c965",
}


@pytest.mark.maestro
@pytest.mark.slow  # ~5 s: three 200-300 kB files repaired twice and loaded by pretty_midi
def test_most_ambiguous_damaged_files_repair_and_load(maestro_root):
    import hashlib

    import pretty_midi

    dur = durations(maestro_root)
    for rel, digest in HARD.items():
        data = (maestro_root / rel).read_bytes()
        with pytest.raises(MidiError, match="no duration is known"):
            repair_bytes(data, None, rel)  # ambiguous: never guessed without the CSV
        fixed = repair_bytes(data, dur[rel], rel)
        check_chunks(fixed, rel)
        assert damage(fixed) == data and hashlib.sha256(fixed).hexdigest().startswith(digest)
        pm = pretty_midi.PrettyMIDI(io.BytesIO(fixed))
        assert abs(max(n.end for n in pm.instruments[0].notes) - dur[rel]) < 1.0
        with pytest.raises(MidiError, match="not at the expected"):
            repair_bytes(data, dur[rel] + 5.0, rel)  # the likeliest must also end where the CSV says


# --- folders the run cannot read ----------------------------------------------------------------


def _as_unprivileged(fn):
    """``fn()``'s result and stderr, run where permissions apply: as root (who reads every folder),
    in a forked child that became the user nobody; otherwise in this process."""
    import contextlib
    import os
    import pickle

    def call():
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                return fn(), err.getvalue()
            except Exception as e:  # reported to the parent, which fails the test on it
                return e, err.getvalue()

    if os.geteuid() != 0:
        return call()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, run, send the pickled answer, exit without cleanup
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            answer = pickle.dumps(call())
        except BaseException as e:  # noqa: BLE001 - anything must reach the parent
            answer = pickle.dumps((RuntimeError(repr(e)), ""))
        with os.fdopen(w, "wb") as f:
            f.write(answer)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return pickle.loads(data)


@pytest.fixture
def tree_with_a_locked_folder():
    """A public temp tree (nobody may read it): two MIDI files, one of them in a folder mode 000."""
    import os
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="musicrnn-locked-"))
    os.chmod(root, 0o777)
    src = root / "src"
    for sub in ("open", "locked"):
        (src / sub).mkdir(parents=True)
        (src / sub / f"{sub}.mid").write_bytes(smf(track(b"\x00\x90\x3c\x40\x10\x3c\x00" + EOT)))
    for folder in (src, src / "open"):
        os.chmod(folder, 0o755)
    for f in src.rglob("*.mid"):
        os.chmod(f, 0o644)
    os.chmod(src / "locked", 0)
    yield root
    os.chmod(src / "locked", 0o755)
    shutil.rmtree(root)


def test_an_unreadable_folder_is_named_not_skipped_silently(tree_with_a_locked_folder):
    from musicrnn.data.cache import list_files

    src = tree_with_a_locked_folder / "src"
    files, err = _as_unprivileged(lambda: [f.path for f in list_files(src)])
    assert files == ["open/open.mid"]
    assert err.startswith(f"warning: folder {src / 'locked'} cannot be read (Permission denied)")
    assert "chmod -R u+rX" in err and len(err.strip().splitlines()) == 1

    dst = tree_with_a_locked_folder / "dst"
    report, err = _as_unprivileged(lambda: repair_tree(src, dst, progress=False, jobs=1))
    assert report["files"] == 1 and report["unreadable_folders"] == [err.strip().removeprefix("warning: ")]
    assert f"folder {src / 'locked'} cannot be read" in err


def test_python_m_musicrnn_data_names_a_zero_tempo_in_one_error_line(tmp_path):
    """``python -m musicrnn.data`` (the data package's ``__main__``) runs the data command line."""
    import os
    import subprocess
    import sys

    src = tmp_path / "tempo0.mid"
    src.write_bytes(smf(track(b"\x00\xff\x51\x03\x00\x00\x00" + ONE_NOTE)))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-m", "musicrnn.data", "repair", str(src), str(tmp_path / "out") + "/"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"error: {src}: track 0 has a tempo of 0") and not (tmp_path / "out").exists()
