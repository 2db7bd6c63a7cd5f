"""Views: conda-facing file serving (channel), JSON API (api, uploads), meta (/-/...)."""
