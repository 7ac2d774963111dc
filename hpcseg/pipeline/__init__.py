"""Segmentation stages as plain functions on arrays (no Dask, no files, no config objects).

smooth → threshold → clean → split → label → measure; :mod:`hpcseg.pipeline.run` chains them
according to a pipeline config.
"""
