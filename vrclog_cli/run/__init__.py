"""The stream side: lines in, outcomes out, in order."""
