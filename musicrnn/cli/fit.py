"""Train a model: ``python -m musicrnn.fit --config configs/hybrid.yaml [--data.seq_length 50 ...]``.

A thin ``LightningCLI`` (run=False) so every knob is a typed constructor argument settable from YAML
or a dotted flag, ``--print_config`` shows the resolved config, and that config is saved beside the
TensorBoard logs of each run.

Each config trains into its own folders, ``checkpoints/<config>/`` (``--checkpoint.dirpath``; one run per
folder, see ``musicrnn.runlock``) and ``logs/<config>/version_N/`` (without --config: ``checkpoints/``,
``logs/musicrnn/``); in the checkpoint folder:
the best by val/loss, one every 5 epochs (``epoch004.ckpt``), and ``last.ckpt``, rewritten after every epoch,
every ``--checkpoint_every_minutes`` minutes of training (default 10,
0 = off) and every ``--checkpoint_every_n_steps`` optimizer steps (default off), so a run killed
at hour five loses minutes. Every checkpoint is written atomically (temp file, fsync, rename): a kill
mid-write leaves the previous complete file. ``--ckpt_path last`` resumes exactly where ``last.ckpt``
left off, mid-epoch included: same weights, optimizer, scheduler, RNG and remaining batches, so the
resumed run reaches the same weights as an uninterrupted one.

A NaN/Inf loss stops the run with one line naming the step; the last good checkpoint is kept. Every
user error (unknown key, wrong type, value out of range, missing or empty data folder, unusable checkpoint,
a network too large for memory; see ``musicrnn.training.preflight``) is one line ``error: ...`` and exit
code 2, and writes nothing.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import signal

from jsonargparse import Namespace
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.plugins.io import TorchCheckpointIO

from musicrnn import runlock
from musicrnn.data.datamodule import MaestroDataModule
from musicrnn.errors import ConfigError, cli_main
from musicrnn.model.lightning import MusicModel
from musicrnn.ranges import check_ranges
from musicrnn.training import preflight, quiet
from musicrnn.training.budget import CpuTimeBudget
from musicrnn.training.callbacks import AtomicCheckpointIO, ExactResume, LastCheckpoint, NaNGuard
from musicrnn.training.hparams import BestMetricHParams, LogShortEpochs
from musicrnn.training.resume import check_matches, continue_log_version, resolve_ckpt_path
from musicrnn.training.samples import SampleLogger

TRAINER_DEFAULTS = {
    "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
               # name None = the config's name (see _per_config)
               "init_args": {"save_dir": "logs", "name": None, "default_hp_metric": False}},
    "max_epochs": 50,
    "log_every_n_steps": 20,
}
CHECKPOINTS = "checkpoints"
NO_CONFIG_NAME = "musicrnn"  # the run's name without --config
NO_LOGGER_ROOT = "outputs"  # git-ignored: with --trainer.logger false (and no default_root_dir), config.yaml goes here
HELP_HINT = "see `python -m musicrnn.fit --help`"


class MusicCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="resume from this checkpoint; 'last' = checkpoint.dirpath/last.ckpt")
        parser.add_argument("--test", type=bool, default=False,
                            help="after fit, evaluate the best checkpoint on the test split")
        parser.add_argument("--checkpoint_every_minutes", type=float, default=10.0,
                            help="also rewrite last.ckpt every this many minutes of training (0 = only at epoch ends)")
        parser.add_argument("--cpu_budget_minutes", type=float | None, default=None,
                            help="stop training after this many minutes of this process's CPU time (a fair "
                                 "budget on a shared machine; the cosine schedule follows it); none = off")
        parser.add_argument("--samples_every_n_epochs", type=int, default=1,
                            help="log a generated sample (piano roll, audio with FluidSynth) to TensorBoard "
                                 "every n validation epochs; 0 = never")
        parser.add_argument("--checkpoint_every_n_steps", type=int | None, default=None,
                            help="also rewrite last.ckpt every this many optimizer steps")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({
            # dirpath None = checkpoints/<config name> (see _per_config)
            "checkpoint.dirpath": None, "checkpoint.save_last": False, "checkpoint.monitor": "val/loss",
            "checkpoint.mode": "min", "checkpoint.save_top_k": 1, "checkpoint.auto_insert_metric_name": False,
            "checkpoint.filename": "best-epoch{epoch:03d}-val_loss{val/loss:.4f}",
        })
        parser.add_lightning_class_args(ModelCheckpoint, "periodic_checkpoint")
        parser.set_defaults({
            # dirpath None = checkpoint.dirpath (see before_instantiate_classes); epoch004.ckpt, not epochepoch=004
            "periodic_checkpoint.dirpath": None, "periodic_checkpoint.every_n_epochs": 5,
            "periodic_checkpoint.save_top_k": -1, "periodic_checkpoint.filename": "epoch{epoch:03d}",
            "periodic_checkpoint.auto_insert_metric_name": False,
        })
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults({"early_stopping.monitor": "val/loss", "early_stopping.patience": 5,
                             "early_stopping.mode": "min", "early_stopping.check_finite": True,
                             # check after validation: a run stopped by max_steps mid-epoch has no val/loss
                             "early_stopping.check_on_train_epoch_end": False})
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.link_arguments("data.seq_length", "model.seq_length")
        parser.link_arguments("data.composers", "model.composers", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        c = self.config
        check_ranges("", {k: c.get(k) for k in ("checkpoint_every_minutes", "checkpoint_every_n_steps",
                                                "samples_every_n_epochs", "cpu_budget_minutes")})
        preflight.check_options(c)
        preflight.check_own_classes(c)  # before anything named in the config is instantiated
        if c.data.regime == "pieces" and c.model.loss_on == "last":
            raise ConfigError("whole-piece training (--data.regime pieces) predicts every note of a chunk, but "
                              "--model.loss_on is 'last' — set --model.loss_on all")
        preflight.check_memory(c)
        _per_config(c)
        if c.periodic_checkpoint.dirpath is None:  # the every-5-epochs files go beside the others
            c.periodic_checkpoint.dirpath = c.checkpoint.dirpath
        _under_root(c)
        preflight.check_writable(c.checkpoint.dirpath, "checkpoint folder", "--checkpoint.dirpath")
        logger_args = _logger_args(c)
        if logger_args is not None and isinstance(logger_args.get("save_dir"), str):
            preflight.check_writable(logger_args.save_dir, "log folder", "--trainer.logger.init_args.save_dir")
        self.resume_from, self.resume_shapes, callbacks = resolve_ckpt_path(c.get("ckpt_path"), c.checkpoint.dirpath,
                                                                            c.data)
        continue_log_version(logger_args, callbacks)

    def instantiate_trainer(self, **kwargs):
        c = self.config
        trainer = super().instantiate_trainer(**kwargs)
        dirpath = c.checkpoint.dirpath
        ours = [NaNGuard(os.path.join(dirpath, "last.ckpt")), ExactResume(), LogShortEpochs()]
        if c.cpu_budget_minutes:
            ours.append(CpuTimeBudget(c.cpu_budget_minutes))
        if trainer.logger is not None:
            ours.append(BestMetricHParams())
            if c.samples_every_n_epochs > 0:
                ours.append(SampleLogger(every_n_epochs=c.samples_every_n_epochs))
        cbs = trainer.callbacks
        if trainer.logger is None:  # --trainer.logger false: the LR monitor has nowhere to log
            cbs = [cb for cb in cbs if not isinstance(cb, LearningRateMonitor)]
        # before the checkpoint writers (Lightning runs those last), so their state is in every checkpoint
        first = next((i for i, cb in enumerate(cbs) if isinstance(cb, ModelCheckpoint)), len(cbs))
        trainer.callbacks = [*cbs[:first], *ours, *cbs[first:],
                             LastCheckpoint(dirpath, c.checkpoint_every_n_steps, c.checkpoint_every_minutes)]
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # keep a user's own plugin
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        return trainer


def _logger_args(c) -> Namespace | None:
    logger = c.trainer.get("logger")
    return logger.get("init_args") if isinstance(logger, Namespace) else None


def _per_config(c) -> None:
    """Each config trains into its own folders: checkpoints/<name>/ and logs/<name>/version_N/, <name> =
    the (last) --config file's name, so a second config's run never touches the first one's last.ckpt."""
    configs = [cfg for cfg in (c.get("config") or []) if cfg is not None]
    name = os.path.splitext(os.path.basename(str(configs[-1])))[0] if configs else NO_CONFIG_NAME
    if c.checkpoint.dirpath is None:  # without --config: checkpoints/ itself, as before per-config folders
        c.checkpoint.dirpath = os.path.join(CHECKPOINTS, name) if configs else CHECKPOINTS
    args = _logger_args(c)
    if args is not None and "name" in args and args.name is None:
        args.name = name


def _under_root(c) -> None:
    """``--trainer.default_root_dir DIR``: relative checkpoint folders and the TensorBoard folder move under DIR
    (made absolute, so a saved config resolves to the same place)."""
    root = c.trainer.get("default_root_dir")
    if not root:
        if not c.trainer.get("logger"):  # config.yaml would land in cwd; checkpoints stay put
            c.trainer.default_root_dir = NO_LOGGER_ROOT
        return
    for key in ("checkpoint", "periodic_checkpoint"):
        c[key].dirpath = os.path.abspath(os.path.join(root, c[key].dirpath))
    args = _logger_args(c)
    if args is not None and isinstance(args.get("save_dir"), str):
        args.save_dir = os.path.abspath(os.path.join(root, args.save_dir))


def _one_line(message: str) -> str:
    """jsonargparse's multi-line parse error -> one line naming the key, the value and the fix."""
    key = re.search(r'Parser key "([^"]+)"', message)
    given = re.search(r"Given value: (.*)", message) or re.search(r"Got value: (.*)", message)
    expected = re.findall(r"Expected a <class '([^']+)'>", message)
    given_text = given.group(1).strip() if given else ""
    if key and given and expected:
        want = " or ".join("None" if e == "NoneType" else e for e in expected)
        return f"--{key.group(1)}: expected {want}, got {given_text!r} — fix the value ({HELP_HINT})"
    text = re.sub(r'^Parser key "([^"]+)":', r"--\1:", " ".join(message.split()))
    if len(text) > 300:
        text = text[:300] + "…"
    return f"{text} — {HELP_HINT}"


@cli_main
def main(args: list[str] | None = None) -> MusicCLI:
    from jsonargparse import ArgumentError
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    logging.getLogger("lightning.fabric.utilities.seed").setLevel(logging.WARNING)  # keep errors one line
    quiet.install()  # no CPU-only banner, litlogger tip or library deprecation warnings
    try:
        cli = MusicCLI(MusicModel, MaestroDataModule, run=False, seed_everything_default=1234,
                       trainer_defaults=TRAINER_DEFAULTS, save_config_kwargs={"overwrite": True}, args=args,
                       parser_kwargs={"description": __doc__.split("\n")[0], "exit_on_error": False})
    except ArgumentError as e:
        raise ConfigError(_one_line(str(e))) from None
    except (MisconfigurationException, ValueError) as e:
        if isinstance(e.__cause__ or e.__context__, ConfigError):
            raise (e.__cause__ or e.__context__) from None
        seed = re.match(r"(-?\d+) is not in bounds", str(e))  # Lightning seeds before our checks run
        if seed:
            raise ConfigError(f"--seed_everything must be in [0, 4294967295], got {seed.group(1)} — fix the value "
                              f"({HELP_HINT})") from None
        raise ConfigError(f"{_one_line(str(e))}") from None
    dm = cli.datamodule
    if cli.trainer.is_global_zero:  # parse/validate the data before anything is written (logs, checkpoints)
        dm.prepare_data()
        dm.setup("fit")
        if len(dm.datasets["validation"]) == 0 and cli.trainer.limit_val_batches != 0:
            raise ConfigError(f"{dm.root} has no validation windows (no file of the validation split has more than "
                              f"{dm.hparams.seq_length} notes): without validation there is no val/loss, best "
                              f"checkpoint, early stopping or schedule — add files, lower --data.seq_length, or "
                              f"pass --trainer.limit_val_batches 0 to train without validation")
    check_matches(cli.resume_from, cli.resume_shapes, cli.model)
    # one run per checkpoint folder (rank 0 holds it for the whole job): a second run is refused
    lock = runlock.hold(cli.config.checkpoint.dirpath) if cli.trainer.is_global_zero \
        else contextlib.nullcontext()
    with lock:
        try:
            cli.trainer.fit(cli.model, dm, ckpt_path=cli.resume_from, weights_only=True)
            if cli.config.get("test"):
                cli.trainer.test(cli.model, dm, ckpt_path="best", weights_only=True)
        except MisconfigurationException as e:  # a trainer option that only fails once training starts
            raise ConfigError(_one_line(str(e))) from None
        except SIGTERMException as e:  # Lightning's own SIGTERM stop (DDP) exits 0: a killed run must not
            raise SystemExit(e.code or 128 + signal.SIGTERM) from None
    return cli


if __name__ == "__main__":
    main()
