"""The studio: a browser page (Gradio) to prime the model, generate, see and hear the result.

``python -m musicrnn.studio`` (or ``musicrnn studio``); needs the extra: ``pip install -e ".[studio]"``.
``session`` does the work through the public API, ``page`` lays it out, ``cli`` starts the server.
"""
