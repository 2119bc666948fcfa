"""Live MIDI: ports and backends, the player, phrase recording, the JACK helper."""
