"""The configuration: schemas (plain dataclasses), validation, and composition with Hydra.

:mod:`~hpcseg.config.schemas` declares every key; :mod:`~hpcseg.config.validate` checks ranges
and cross-field rules; :mod:`~hpcseg.config.compose` is the only module that talks to Hydra.
"""
