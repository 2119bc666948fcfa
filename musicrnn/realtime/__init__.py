"""Real-time MIDI: ports and backends, the player, phrase recording, JACK delivery, live sessions.

``python -m musicrnn.live`` (``musicrnn.cli.live``) is the command line over this package.
"""
