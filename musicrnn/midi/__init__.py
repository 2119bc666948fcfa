"""Raw Standard MIDI File bytes: one event walker (``events``), the strict check, the repair of
line-ending damage (one file: ``repair``; a folder: ``tree``) and note-end timing. No torch."""
