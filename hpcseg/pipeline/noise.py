"""How far the nuclei stand above the pixel noise: the contrast-to-noise ratio of a frame.

A photon-starved frame needs more smoothing than the nucleus size asks for: at a sigma of d/20
its photon noise breaks nuclei into pieces and ragged edges (robustness grid, photons x0.03:
34 splits in 527 nuclei against 1-7 on the other frames of that size). The ratio is measured on
the frame as read and its first mask: the foreground's median above the background's, over the
noise's standard deviation inside the foreground (where the photon noise of the nuclei is),
read from the differences of neighbouring pixels along a row, which a nucleus's smooth profile
hardly changes: robustly (median absolute deviation; where most neighbours are equal, as with
a fraction of a count of noise, the mean absolute deviation), and the difference of two pixels
has sqrt(2) times one pixel's deviation. Pixels that are not finite (NaN padding) are left
out. Medians of about :data:`SAMPLE_PIXELS` pixels (every k-th row) say as much as those of
all and cost a fifth on a 520x696 frame.
:func:`hpcseg.pipeline.diameter.noise_factor` turns the ratio into more smoothing.
"""

from __future__ import annotations

import math

from hpcseg.pipeline.backend import backend_of

MIN_PIXELS = 50  # fewer foreground pairs or background pixels than this: nothing to measure
MAD_TO_SD = 1.4826  # a normal's standard deviation per median absolute deviation
MEAN_AD_TO_SD = math.sqrt(math.pi / 2)  # ... per mean absolute deviation
SAMPLE_PIXELS = 2**16  # about this many pixels are read: every k-th row


def contrast_to_noise(image, mask) -> float | None:
    """The nuclei's contrast over the noise (module docstring) of ``image`` with foreground
    ``mask`` (any number of axes: rows along the last); None when there is too little
    foreground or background to measure, the foreground is not brighter than the background,
    or no noise can be read (a noiseless image)."""
    xp = backend_of(image).xp
    width = image.shape[-1]
    step = max(1, image.size // SAMPLE_PIXELS)
    rows = slice(step // 2, None, step)  # spread over the image, not its first row
    values = image.reshape(-1, width)[rows].astype(xp.float32)
    finite = xp.isfinite(values)
    mask = mask.reshape(-1, width)[rows] & finite
    pairs = mask[:, 1:] & mask[:, :-1]
    background = ~mask & finite
    if int(pairs.sum()) < MIN_PIXELS or int(background.sum()) < MIN_PIXELS:
        return None
    steps = (values[:, 1:] - values[:, :-1])[pairs]
    deviations = xp.abs(steps - xp.median(steps))
    spread = MAD_TO_SD * float(xp.median(deviations))
    if spread == 0:  # most neighbours equal: the mean absolute deviation (of a normal)
        spread = MEAN_AD_TO_SD * float(xp.mean(deviations))
    noise = spread / math.sqrt(2.0)
    contrast = float(xp.median(values[mask])) - float(xp.median(values[background]))
    if not (math.isfinite(contrast) and math.isfinite(noise)) or contrast <= 0 or noise == 0:
        return None
    return contrast / noise
