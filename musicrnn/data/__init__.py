"""The data layer: the note cache (``cache``), the LightningDataModule (windows, ``datamodule``),
whole-piece chunks (``pieces``) and the MAESTRO download. Knows nothing of models."""
