"""repoproxy_watch: drop packages into a watched folder and they appear in the channel."""

__version__ = "0.1.0"
