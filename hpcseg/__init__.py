"""hpcseg: nuclei segmentation of fluorescence-microscopy images on HPC clusters."""

__version__ = "0.1.0"
