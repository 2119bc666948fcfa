"""Helpers shared by several test modules (plain functions and constants; fixtures are in conftest)."""
from __future__ import annotations

import io
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from musicrnn.data.cache import SAMPLE_ROOT

SEQ = 8
MAESTRO_FILE = next(iter(sorted(SAMPLE_ROOT.rglob("*.midi"))))
ON, OFF, CC = 0x90, 0x80, 0xB0
needs_jack = pytest.mark.skipif(shutil.which("jackd") is None, reason="jackd not installed (apt-get install jackd2)")


def train_tiny(folder: Path) -> Path:
    """Train LSTM(16) for a handful of steps on the bundled sample; return its checkpoint path."""
    import lightning as L

    from musicrnn.data.datamodule import MaestroDataModule
    from musicrnn.model.cores import LSTMNet
    from musicrnn.model.lightning import MusicModel

    L.seed_everything(0, verbose=False)
    dm = MaestroDataModule(root=str(SAMPLE_ROOT), seq_length=SEQ, batch_size=32, jobs=1,
                           cache_dir=str(folder / "cache"))
    model = MusicModel(net=lambda d: LSTMNet(d, hidden_size=16), seq_length=SEQ, composers=dm.composers,
                       scheduler="none", lr=0.01)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=8, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", devices=1)
    trainer.fit(model, dm)
    path = folder / "tiny.ckpt"
    trainer.save_checkpoint(path)
    return path


def multitrack_with_drums(n_piano: int) -> bytes:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    piano, bass = pretty_midi.Instrument(0), pretty_midi.Instrument(33)
    drums = pretty_midi.Instrument(0, is_drum=True)
    for i in range(n_piano):
        piano.notes.append(pretty_midi.Note(80, 60 + i % 12, 0.25 * i, 0.25 * i + 0.2))
    bass.notes.append(pretty_midi.Note(90, 36, 0.1, 1.0))
    for i in range(40):
        drums.notes.append(pretty_midi.Note(100, 35 + i % 10, 0.125 * i, 0.125 * i + 0.05))
    pm.instruments += [piano, bass, drums]
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def pretty_midi_bytes(notes, program: int = 0) -> bytes:
    """The reference for ``midi.write``: the same notes written by pretty_midi (960 ticks per beat,
    120 bpm, times snapped to ticks, every note at least one tick long)."""
    import numpy as np
    import pretty_midi

    from musicrnn.midi.write import MIDI_RESOLUTION, MIDI_TEMPO, TICKS_PER_SECOND

    pm = pretty_midi.PrettyMIDI(resolution=MIDI_RESOLUTION, initial_tempo=MIDI_TEMPO)
    inst = pretty_midi.Instrument(program=program, name="musicrnn")
    s_tick = np.rint(notes.start * TICKS_PER_SECOND).astype(np.int64)
    e_tick = np.maximum(np.rint(notes.end * TICKS_PER_SECOND).astype(np.int64), s_tick + 1)
    for p, s, e, v in zip(notes.pitch.tolist(), s_tick.tolist(), e_tick.tolist(), notes.velocity.tolist()):
        inst.notes.append(pretty_midi.Note(velocity=v, pitch=p, start=s / TICKS_PER_SECOND, end=e / TICKS_PER_SECOND))
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def ctrl_c():
    """A real SIGINT to the main thread, as a terminal's Ctrl-C delivers it."""
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)



def assert_no_hanging(messages, n_notes=None):
    """Per (channel, pitch) the messages alternate on/off, starting with on and ending with off."""
    state: dict[tuple[int, int], bool] = {}
    ons = offs = 0
    for msg in messages:
        kind, key = msg[0] & 0xF0, (msg[0] & 0x0F, msg[1])
        if kind == ON and msg[2] > 0:
            assert not state.get(key, False), f"note-on of sounding {key}"
            state[key] = True
            ons += 1
        elif kind == OFF or (kind == ON and msg[2] == 0):
            assert state.get(key, False), f"note-off of silent {key}"
            state[key] = False
            offs += 1
    assert not any(state.values()), f"hanging notes: {[k for k, v in state.items() if v]}"
    if n_notes is not None:
        assert ons == n_notes and offs == n_notes
    return ons, offs


# ---- Player logic, in-memory port --------------------------------------------------------------

class Receiver:
    """A second JACK client (plain rtmidi, independent of the code under test) with an input port.

    Polls instead of using rtmidi callbacks: python-rtmidi 1.5.8's JACK input callback garbles
    messages that arrive in the same JACK cycle (lost + duplicated); polling is exact.
    """

    def __init__(self, client="receiver"):
        import rtmidi

        self.got: list[tuple[float, list[int]]] = []
        self.dev = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client)
        self.dev.open_virtual_port("in")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self):
        while not self._stop.is_set():
            m = self.dev.get_message()
            if m is None:
                time.sleep(0.0002)
            else:
                self.got.append((time.perf_counter(), list(m[0])))

    def close(self):
        self._stop.set()
        self._thread.join()
        self.dev.close_port()
        self.dev.delete()
