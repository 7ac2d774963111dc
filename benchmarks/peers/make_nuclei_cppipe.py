"""Write nuclei.cppipe with CellProfiler's own API (run with CellProfiler's venv, not hpcseg's).

    ~/.cache/hpcseg/peers/cellprofiler/bin/python benchmarks/peers/make_nuclei_cppipe.py

Images → Metadata → NamesAndTypes (every file is the grayscale image "DNA") → Groups →
IdentifyPrimaryObjects "Nuclei" (global two-class Otsu; declumping and dividing lines by shape;
typical diameter 8-40 pixels, objects outside it discarded (the default), objects touching the
border kept) → ConvertObjectsToImage (color format "uint16": the object labels) → SaveImages
(16-bit integer TIFF, uncompressed, named after the input file plus "_labels"). CellProfiler 5
saves objects only this way: SaveImages' old "Objects" image type is gone. The labels keep their
values (checked: the 16-bit file equals the "No conversion" int32 file, labels 1..n).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# this folder must not shadow the cellprofiler package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


def build():
    """The pipeline, with the four input modules CellProfiler starts every pipeline with."""
    from cellprofiler.modules.convertobjectstoimage import ConvertObjectsToImage
    from cellprofiler.modules.identifyprimaryobjects import IdentifyPrimaryObjects
    from cellprofiler.modules.saveimages import SaveImages
    from cellprofiler_core.pipeline import Pipeline

    pipeline = Pipeline()
    pipeline.init_modules()  # Images, Metadata, NamesAndTypes, Groups
    names = pipeline.modules()[2]
    names.assignment_method.value = "All images"
    names.single_load_as_choice.value = "Grayscale image"
    names.single_image_provider.value = "DNA"

    ipo = IdentifyPrimaryObjects()
    ipo.x_name.value = "DNA"
    ipo.y_name.value = "Nuclei"
    ipo.size_range.value = (8, 40)
    ipo.exclude_size.value = True
    ipo.exclude_border_objects.value = False
    ipo.use_advanced.value = True
    ipo.threshold.threshold_scope.value = "Global"
    ipo.threshold.global_operation.value = "Otsu"
    ipo.threshold.two_class_otsu.value = "Two classes"
    ipo.unclump_method.value = "Shape"
    ipo.watershed_method.value = "Shape"

    convert = ConvertObjectsToImage()
    convert.object_name.value = "Nuclei"
    convert.image_name.value = "NucleiLabels"
    convert.image_mode.value = "uint16"

    save = SaveImages()
    save.save_image_or_figure.value = "Image"
    save.image_name.value = "NucleiLabels"
    save.file_name_method.value = "From image filename"
    save.file_image_name.value = "DNA"
    save.wants_file_name_suffix.value = True
    save.file_name_suffix.value = "_labels"
    save.file_format.value = "tiff"
    save.bit_depth.value = "16-bit integer"
    save.tiff_compress.value = False
    save.overwrite.value = True

    for module in (ipo, convert, save):
        module.set_module_num(len(pipeline.modules()) + 1)
        pipeline.add_module(module)
    for module in pipeline.modules():
        module.show_window = False  # headless
    return pipeline


def main() -> None:
    from cellprofiler_core.preferences import set_headless

    set_headless()
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "nuclei.cppipe"
    with out.open("w") as fp:
        build().dump(fp, save_image_plane_details=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
