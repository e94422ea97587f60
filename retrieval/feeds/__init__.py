"""Podcast feeds as a source of transcripts: read RSS/Atom feeds, download each episode's best
``<podcast:transcript>`` into the corpus folder with an ``.episode.json`` sidecar, and keep them current.

Modules: ``parse`` (feed bytes -> episodes and their transcript links), ``http`` (polite conditional
GETs with a size cap), ``state`` (the feeds followed and their fetch state, in the corpus folder),
``sidecar`` (the episode metadata file the corpus reader applies), ``manager`` (add, list, remove,
refresh), ``schedule`` (the refresh loop of a running bot). Nothing here knows of ``bot``.
"""
