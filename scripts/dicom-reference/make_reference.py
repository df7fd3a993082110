"""Reference renderings of the DICOM test files, made with pydicom.

eval/prepare/dicom's tests compare the Go reader against these: the stored
pixel values and modality values as pydicom reads them, and the 8-bit
rendering the reader documents (pydicom's own VOI window mapped to 0..255
when the file has a window; the image's own range mapped linearly when it
has none; the decoded RGB for JPEG). Run through run.sh, which pins the
versions.
"""

import hashlib
import json
import pathlib
import sys

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels import apply_modality_lut, apply_voi_lut

testdata = pathlib.Path(sys.argv[1])
out = {}
for name in ["MR_small.dcm", "MR_small_implicit.dcm", "CT_small.dcm", "SC_rgb_jpeg_dcmtk.dcm"]:
    ds = pydicom.dcmread(testdata / name)
    arr = ds.pixel_array
    entry = {"rows": int(ds.Rows), "columns": int(ds.Columns), "transfer_syntax": str(ds.file_meta.TransferSyntaxUID)}
    if ds.SamplesPerPixel == 1:
        entry["stored_sha256"] = hashlib.sha256(arr.astype("<i4").tobytes()).hexdigest()
        mod = apply_modality_lut(arr, ds).astype("float64")
        entry["modality_min"], entry["modality_max"] = float(mod.min()), float(mod.max())
        if "WindowCenter" in ds:
            win = apply_voi_lut(mod, ds)
            if ds.PixelRepresentation == 0:
                ymin, ymax = 0, 2**ds.BitsStored - 1
            else:
                ymin, ymax = -(2 ** (ds.BitsStored - 1)), 2 ** (ds.BitsStored - 1) - 1
            if "RescaleSlope" in ds and "RescaleIntercept" in ds:
                ymin, ymax = ymin * ds.RescaleSlope + ds.RescaleIntercept, ymax * ds.RescaleSlope + ds.RescaleIntercept
            img = (win - ymin) / (ymax - ymin) * 255
            entry["rendering"] = "voi window"
        else:
            img = (mod - mod.min()) / (mod.max() - mod.min()) * 255
            entry["rendering"] = "image range"
        img = np.clip(np.round(img), 0, 255).astype("uint8")
        Image.fromarray(img, mode="L").save(testdata / "reference" / (name[:-4] + ".png"))
    else:
        img = arr  # pydicom converts YBR_FULL JPEG to RGB
        entry["rendering"] = "decoded rgb"
        Image.fromarray(img.astype("uint8"), mode="RGB").save(testdata / "reference" / (name[:-4] + ".png"))
    out[name] = entry
(testdata / "reference" / "reference.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
