"""A tiny end-to-end check of an installation (used by the container images' %test)."""

from __future__ import annotations

from hpcseg.config.schemas import PipelineConfig
from hpcseg.data.synthetic import synthetic_frame
from hpcseg.pipeline.segment import segment


def main() -> None:
    image, truth = synthetic_frame(0, 0, shape=(260, 348))
    found = segment(image, PipelineConfig()).labels.max()
    expected = len(set(truth.ravel().tolist())) - 1
    print(f"hpcseg selftest: {found} nuclei segmented, {expected} in the ground truth")
    if not 0.5 * expected <= found <= 1.5 * expected:
        raise SystemExit("hpcseg selftest: segmentation is off")


if __name__ == "__main__":
    main()
