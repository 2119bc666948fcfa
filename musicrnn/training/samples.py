"""A callback that shows what the model plays, next to the scalars in TensorBoard.

At the end of each validation epoch it generates a short continuation of a fixed validation window
and logs it as a piano-roll image (and as audio when FluidSynth is installed).
"""
from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn


class SampleLogger(L.Callback):
    """Log a generated sample each validation epoch.

    Args:
        num_notes: notes to generate.
        temperature: sampling temperature.
        audio: also log audio (needs FluidSynth; skipped quietly without it).
        every_n_epochs: log every n validation epochs.
    """

    def __init__(self, num_notes: int = 64, temperature: float = 1.0, audio: bool = True, every_n_epochs: int = 1):
        self.num_notes, self.temperature, self.audio, self.every = num_notes, temperature, audio, every_n_epochs

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.logger is None or trainer.current_epoch % self.every:
            return
        writer = getattr(trainer.logger, "experiment", None)
        if not hasattr(writer, "add_image"):
            return
        dm = trainer.datamodule
        ds = getattr(dm, "datasets", {}).get("validation") if dm is not None else None
        if ds is None or len(ds) == 0:
            return
        from musicrnn.notes import Notes
        from musicrnn.render import piano_roll_image
        from musicrnn.sampling.generator import generate

        window, _ = ds[0]  # (L+1, 4) raw features of a fixed validation window
        prime = Notes.from_features(window[:-1].numpy())
        was_training = pl_module.training
        pl_module.eval()
        try:
            (notes,) = generate(pl_module.network, prime, self.num_notes, temperature=self.temperature, seed=0,
                                device=str(pl_module.device))
        except Exception as e:  # a picture is never worth a training run: warn and go on
            rank_zero_warn(f"SampleLogger: could not generate a sample ({type(e).__name__}: {e})")
            return
        finally:
            pl_module.train(was_training)
        step = trainer.global_step
        writer.add_image("samples/piano_roll", piano_roll_image(notes), step, dataformats="HWC")
        if self.audio:
            from musicrnn.render import fluidsynth_available, render_wav_array

            if fluidsynth_available():
                audio, sr = render_wav_array(notes)
                writer.add_audio("samples/audio", torch.from_numpy(audio).unsqueeze(0), step, sample_rate=sr)
