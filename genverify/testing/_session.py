"""The pytest session's seed (``--genverify-seed``), set by the plugin; imports nothing, so the plugin stays free."""

from __future__ import annotations

#: None: not set (the checks fall back to ``$GENVERIFY_SEED``, then 0).
SEED: int | None = None
