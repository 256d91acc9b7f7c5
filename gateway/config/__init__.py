"""Configuration: the frozen model (``model``: the whole of it; ``mmsc``, ``pools`` and
``sections``: its sections; ``values``: their value types) and the TOML loader (``load``)."""
