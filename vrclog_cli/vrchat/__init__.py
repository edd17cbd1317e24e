"""What is VRChat-specific: the built-in parser."""
