"""Model options as the user writes them: `-o key=value` on the command line."""

from __future__ import annotations

from genforge.core.errors import UserError


def parse_model_options(pairs, flag: str = "-o", example: str = "latent_dim=64") -> dict:
    """("latent_dim=64", ...) -> {"latent_dim": "64", ...}; make_config converts the values."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} {pair!r} must look like key=value (e.g. {flag} {example})")
        options[key.strip().replace("-", "_")] = value.strip()
    return options
