"""What a run leaves behind: table schemas, the Parquet store, provenance, scores, pictures."""
