"""The studio's Gradio page: prime, settings, Generate / Continue, and what comes back.

Each handler turns a ``MusicRNNError`` (bad upload, bad setting, bad checkpoint) into one line on the page
and anything unexpected into a short message (the traceback goes to the server log): the server keeps
running whatever a person uploads. Requests queue; ``concurrency`` generations run at once, so one long
request does not hold up the others, and each is capped at ``MAX_NOTES_PER_REQUEST`` notes.
"""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from musicrnn import api
from musicrnn.errors import MusicRNNError
from musicrnn.studio import session
from musicrnn.studio.pieces import PieceFile
from musicrnn.studio.structure import HEADERS

UPLOAD, PIECE, NONE = "Upload a MIDI file", "A piece from the list", "None (a window of the bundled sample)"
COMPOSER_AUTO = "(the prime's, else unknown)"
log = logging.getLogger("musicrnn.studio")


def _message(e: Exception) -> str:
    if isinstance(e, MusicRNNError):
        return f"**Error:** {e}"
    log.exception("unexpected error")
    return f"**Error:** something went wrong ({type(e).__name__}: {e}) — try again; the server log has the details"


def build(studio: session.Studio, pieces: list[PieceFile], checkpoints: list[str], concurrency: int = 2):
    """The page (a ``gr.Blocks``); ``launch`` it."""
    by_label = {p.label: p for p in pieces}

    def prime_changed(source, upload, label, at, ckpt):
        """-> (source, prime notes or None, its piano roll or None, message)."""
        if source == NONE:
            return source, None, None, "The model starts from a window of the bundled sample, drawn with the seed."
        try:
            if source == UPLOAD:
                if upload is None:
                    return source, None, None, "Upload a MIDI file (.mid or .midi)."
                name = Path(upload).name
                prime = studio.read_prime(upload, ckpt, at, name)
            else:
                if label not in by_label:
                    return source, None, None, "Pick a piece from the list."
                name = label
                prime = studio.read_prime(by_label[label].path, ckpt, at, name)
            roll = studio.prime_roll(prime, f"prime: the {at} of {name} ({len(prime)} notes)")
            return source, prime, str(roll), f"Prime: the {at} of {name}, {len(prime)} notes, {prime.duration:.1f} s."
        except Exception as e:  # noqa: BLE001 - every failure is a message on the page
            return source, None, None, _message(e)

    def uploaded(upload, label, at, ckpt):
        """As prime_changed; a file that cannot be a prime is taken off the page (the message stays)."""
        shown = prime_changed(UPLOAD, upload, label, at, ckpt)
        return (*shown, gr.update() if shown[1] is not None else None)

    def picked(upload, label, at, ckpt):
        return prime_changed(PIECE, upload, label, at, ckpt)

    def composers_of(ckpt):
        try:
            names = [c for c in studio.composers(ckpt) if c != "<unknown>"]
            return gr.update(choices=[COMPOSER_AUTO, *names], value=COMPOSER_AUTO), ""
        except Exception as e:  # noqa: BLE001
            return gr.update(choices=[COMPOSER_AUTO], value=COMPOSER_AUTO), _message(e)

    def shown(take: session.Take, note: str = ""):
        audio = str(take.wav) if take.wav else None
        n = len(take.piece.continuation)
        status = (f"Done: {n} notes generated after {len(take.piece.prime)} prime notes — seed **{take.piece.seed}** "
                  f"(enter it as the seed to repeat this piece). {note}")
        if take.wav is None:
            status += "\n\n" + session.INSTALL_AUDIO
        return take, str(take.roll), audio, take.files, take.rows, status

    def failed(e, take):
        return take, gr.update(), gr.update(), gr.update(), gr.update(), _message(e)

    def generate(source, prime, n, temperature, top_p, composer, seed, ckpt, take,
                 progress=gr.Progress()):  # noqa: B008 - how Gradio asks for a bar
        try:
            if source != NONE and prime is None:
                raise session.StudioError("no prime — upload a MIDI file or pick a piece first (or choose None)")
            settings = session.Settings(int(n), float(temperature), float(top_p),
                                        None if composer in (None, COMPOSER_AUTO) else composer,
                                        _seed(seed), ckpt)
            done = _progress(progress)
            return shown(studio.generate(prime if source != NONE else None, settings, done))
        except Exception as e:  # noqa: BLE001
            return failed(e, take)

    def extend(n, take, progress=gr.Progress()):  # noqa: B008 - how Gradio asks for a bar
        try:
            if take is None:
                raise session.StudioError("nothing to continue yet — press Generate first")
            return shown(studio.extend(take, int(n), _progress(progress)), f"(continued by {int(n)})")
        except Exception as e:  # noqa: BLE001
            return failed(e, take)

    with gr.Blocks(title="musicrnn studio", delete_cache=(1800, 3600)) as page:
        gr.Markdown("# musicrnn studio\nPrime the model with a MIDI file or a piece, generate, see and hear "
                    "the continuation (in the result, prime notes are blue, generated notes orange).")
        take = gr.State(None)
        prime = gr.State(None)
        with gr.Row():
            with gr.Column():
                source = gr.Radio([UPLOAD, PIECE, NONE], value=PIECE, label="Prime", elem_id="prime-source")
                upload = gr.File(label="MIDI file", file_types=[".mid", ".midi"], type="filepath",
                                 elem_id="prime-upload")
                piece = gr.Dropdown([p.label for p in pieces], value=pieces[0].label if pieces else None,
                                    label="Piece (composer — title)", elem_id="prime-piece")
                at = gr.Radio(["end", "start"], value="end", label="Use the file's", elem_id="prime-at")
                prime_msg = gr.Markdown(elem_id="prime-message")
                prime_roll = gr.Image(label="Prime", type="filepath", interactive=False, elem_id="prime-roll")
            with gr.Column():
                n = gr.Slider(1, session.MAX_NOTES_PER_REQUEST, value=200, step=1, label="Notes to generate",
                              elem_id="num-notes")
                temperature = gr.Slider(0, 2, value=api.DEFAULT_TEMPERATURE, step=0.05, label="Temperature",
                                        elem_id="temperature")
                top_p = gr.Slider(0.05, 1, value=api.DEFAULT_TOP_P, step=0.01, label="Top-p (1 = off)",
                                  elem_id="top-p")
                composer = gr.Dropdown([COMPOSER_AUTO], value=COMPOSER_AUTO, label="Composer", elem_id="composer")
                seed = gr.Textbox("", label="Seed (empty: random, shown with the result)", elem_id="seed")
                ckpt = gr.Dropdown(checkpoints, value=checkpoints[0], label="Checkpoint", elem_id="checkpoint")
                with gr.Row():
                    go = gr.Button("Generate", variant="primary", elem_id="generate")
                    more_n = gr.Number(value=100, precision=0, minimum=1, maximum=session.MAX_NOTES_PER_REQUEST,
                                       label="Continue by (notes)", elem_id="continue-notes")
                    more = gr.Button("Continue", elem_id="continue")
        status = gr.Markdown(elem_id="status")
        roll = gr.Image(label="Piano roll", type="filepath", interactive=False, elem_id="result-roll")
        audio = gr.Audio(label="Listen", type="filepath", interactive=False, elem_id="result-audio",
                         waveform_options=gr.WaveformOptions(show_recording_waveform=False))  # a plain <audio>
        files = gr.File(label="Downloads (MIDI, WAV)", file_count="multiple", interactive=False,
                        elem_id="result-files")
        table = gr.Dataframe(headers=HEADERS, label="Structure of the generated notes", interactive=False,
                             elem_id="structure")

        # .input and .upload fire on what the person does, not on the page's own updates of the source
        prime_inputs = [source, upload, piece, at, ckpt]
        prime_outputs = [source, prime, prime_roll, prime_msg]
        source.input(prime_changed, prime_inputs, prime_outputs, concurrency_limit=None)
        at.input(prime_changed, prime_inputs, prime_outputs, concurrency_limit=None)
        upload.upload(uploaded, prime_inputs[1:], [*prime_outputs, upload], concurrency_limit=None)
        piece.input(picked, prime_inputs[1:], prime_outputs, concurrency_limit=None)
        ckpt.change(composers_of, [ckpt], [composer, prime_msg]).then(prime_changed, prime_inputs, prime_outputs)
        page.load(composers_of, [ckpt], [composer, prime_msg]).then(prime_changed, prime_inputs, prime_outputs)
        result = [take, roll, audio, files, table, status]
        go.click(generate, [source, prime, n, temperature, top_p, composer, seed, ckpt, take], result,
                 concurrency_limit=concurrency, concurrency_id="generation")
        more.click(extend, [more_n, take], result, concurrency_limit=concurrency, concurrency_id="generation")
    return page


def _seed(text) -> int | None:
    """The seed field: empty -> None (random), else a whole number >= 0."""
    text = str(text or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise session.StudioError(f"seed {text!r} is not a whole number >= 0 — enter e.g. 1234, or leave it empty")
    return int(text)


def _progress(progress):
    """The API's (done, total) callback -> Gradio's progress bar."""
    def done(i: int, total: int) -> None:
        progress(i / total, desc=f"{i} / {total} notes")
    return done
