"""Segmentation stages as plain functions on arrays (no Dask, no files).

smooth → threshold → clean → split → label → measure; :mod:`hpcseg.pipeline.segment` chains
them according to a pipeline config, and :mod:`hpcseg.pipeline.diameter` turns the config's
null lengths into pixels (the only other module that reads a config object).
"""
