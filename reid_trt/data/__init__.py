"""Image data: synthetic person-like crops and crops read from disk."""
