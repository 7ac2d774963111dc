"""Data sources: image records from globs or the synthetic generator, and the TIFF reader."""
