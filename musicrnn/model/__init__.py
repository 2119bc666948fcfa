"""The model layer: cores (``cores``, ``window_cores``), heads, the plain network (``network``:
encode -> core -> heads, rebuilt from a checkpoint alone), checkpoint reading; and the
LightningModule that trains it (``lightning``, the only module here that imports Lightning)."""
