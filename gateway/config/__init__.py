"""Configuration: the frozen model (``model``) and the TOML loader (``load``)."""
