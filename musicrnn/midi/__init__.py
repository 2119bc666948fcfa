"""Standard MIDI File bytes, the one layer that reads and writes them: the byte readers and event
walkers (``events``) that the strict check (``check``), the vectorised note reader (``fast``), the
repair of line-ending damage (one file: ``repair``; a folder: ``tree``) and note-end timing build on,
and the one writer (``write``). No torch, no ``Notes`` (they are the layer above)."""
