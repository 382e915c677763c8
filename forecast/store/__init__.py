"""The fits directory: skill files and the index that switches them atomically."""
