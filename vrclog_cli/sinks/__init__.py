"""Where events go: JSON Lines and pretty output, CI reports."""
