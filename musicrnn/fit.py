"""Train a model: ``python -m musicrnn.fit --config configs/hybrid.yaml [--data.seq_length 50 ...]``.

A thin ``LightningCLI`` (run=False) so every knob is a typed constructor argument settable from YAML
or a dotted flag, ``--print_config`` shows the resolved config, and that config is saved beside the
TensorBoard logs of each run. Checkpoints go to ``checkpoints/`` (``last.ckpt``, the best by
val/loss, and one every 5 epochs); ``--ckpt_path last`` resumes.
"""
from __future__ import annotations

import sys

from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from .data import MaestroDataModule
from .errors import ConfigError, cli_main
from .module import MusicModel

TRAINER_DEFAULTS = {
    "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
               "init_args": {"save_dir": "logs", "name": "musicrnn"}},
    "max_epochs": 50,
    "log_every_n_steps": 20,
}


class MusicCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="resume from this checkpoint; 'last' = checkpoint.dirpath/last.ckpt")
        parser.add_argument("--test", type=bool, default=False,
                            help="after fit, evaluate the best checkpoint on the test split")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({
            "checkpoint.dirpath": "checkpoints", "checkpoint.save_last": True, "checkpoint.monitor": "val/loss",
            "checkpoint.mode": "min", "checkpoint.save_top_k": 1, "checkpoint.auto_insert_metric_name": False,
            "checkpoint.filename": "best-epoch{epoch:03d}-val_loss{val/loss:.4f}",
        })
        parser.add_lightning_class_args(ModelCheckpoint, "periodic_checkpoint")
        parser.set_defaults({
            "periodic_checkpoint.dirpath": "checkpoints", "periodic_checkpoint.every_n_epochs": 5,
            "periodic_checkpoint.save_top_k": -1, "periodic_checkpoint.filename": "epoch{epoch:03d}",
        })
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults({"early_stopping.monitor": "val/loss", "early_stopping.patience": 5,
                             "early_stopping.mode": "min", "early_stopping.check_finite": True})
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.link_arguments("data.seq_length", "model.seq_length")
        parser.link_arguments("data.composers", "model.composers", apply_on="instantiate")


def _ckpt_path(cli: MusicCLI) -> str | None:
    path = cli.config.get("ckpt_path")
    if path == "last":
        import os

        last = os.path.join(cli.config.checkpoint.dirpath, "last.ckpt")
        if not os.path.exists(last):
            raise ConfigError(f"--ckpt_path last: {last} does not exist — train once without --ckpt_path first")
        return last
    if path is not None:
        import os

        if not os.path.exists(path):
            raise ConfigError(f"--ckpt_path {path}: no such checkpoint")
    return path


@cli_main
def main(args: list[str] | None = None) -> MusicCLI:
    cli = MusicCLI(MusicModel, MaestroDataModule, run=False, seed_everything_default=1234,
                   trainer_defaults=TRAINER_DEFAULTS, save_config_kwargs={"overwrite": True},
                   args=args, parser_kwargs={"description": __doc__.split("\n")[0]})
    cli.trainer.fit(cli.model, cli.datamodule, ckpt_path=_ckpt_path(cli))
    if cli.config.get("test"):
        cli.trainer.test(cli.model, cli.datamodule, ckpt_path="best")
    return cli


if __name__ == "__main__":
    main()
