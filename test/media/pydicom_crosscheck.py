#!/usr/bin/python3
"""Writes DICOM files with pydicom (an implementation independent of ours) and, next to each,
the RGB frames pydicom itself decodes from it, for test/media/dicom_pydicom.test.ts.

Usage: pydicom_crosscheck.py OUT_DIR   (prints a JSON list of cases on stdout)
Needs Debian's python3-pydicom (2.x) and python3-numpy; no network, no other packages.
"""
import json
import sys

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.pixel_data_handlers.util import apply_color_lut, convert_color_space
from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian, RLELossless, generate_uid)

OUT = sys.argv[1]
rng = np.random.default_rng(7)
ROWS, COLS = 24, 32
cases = []


def dataset(syntax, frames, photometric, samples=1, bits=8, stored=None, planar=0):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.3.1'
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(None, {}, file_meta=meta, preamble=b'\0' * 128)
    ds.is_little_endian = syntax != ExplicitVRBigEndian
    ds.is_implicit_VR = syntax == ImplicitVRLittleEndian
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = 'US'
    ds.PatientName = 'Crosscheck^Patient'
    ds.PatientID = 'XCHK-0001'
    ds.Rows, ds.Columns = ROWS, COLS
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits
    ds.BitsStored = stored or bits
    ds.HighBit = (stored or bits) - 1
    ds.PixelRepresentation = 0
    if samples == 3:
        ds.PlanarConfiguration = planar
    ds.NumberOfFrames = frames
    return ds


def save(name, ds, pixels_bytes, expected, fps=None, tolerance=0):
    ds.PixelData = pixels_bytes
    path = f'{OUT}/{name}'
    ds.save_as(path, write_like_original=False)
    expected = np.ascontiguousarray(expected.astype(np.uint8))
    expected.tofile(path + '.rgb')
    cases.append({'name': name, 'file': path, 'expected': path + '.rgb', 'frames': int(expected.shape[0]),
                  'rows': ROWS, 'columns': COLS, 'fps': fps, 'tolerance': tolerance})


def as_rgb(grey):
    return np.repeat(grey[..., None], 3, axis=-1)


def reread(path):
    return pydicom.dcmread(path)


# 1. 8-bit grey cine, explicit little endian, Frame Time 40 ms.
grey = rng.integers(0, 256, (5, ROWS, COLS), dtype=np.uint8)
ds = dataset(ExplicitVRLittleEndian, 5, 'MONOCHROME2')
ds.FrameTime = '40'
save('grey8_explicit.dcm', ds, grey.tobytes(), as_rgb(grey), fps=25)

# 2. The same in implicit VR, timed by a Frame Time Vector through the Frame Increment Pointer.
ds = dataset(ImplicitVRLittleEndian, 5, 'MONOCHROME2')
ds.FrameTimeVector = ['0', '50', '50', '50', '50']
ds.FrameIncrementPointer = pydicom.tag.Tag(0x0018, 0x1065)
save('grey8_implicit.dcm', ds, grey.tobytes(), as_rgb(grey), fps=20)

# 3. Deflated explicit little endian, Cine Rate 30.
ds = dataset(DeflatedExplicitVRLittleEndian, 5, 'MONOCHROME2')
ds.CineRate = 30
save('grey8_deflated.dcm', ds, grey.tobytes(), as_rgb(grey), fps=30)

# 4. 8-bit RGB, planar, explicit big endian: pydicom's pixel_array is the reference.
rgb = rng.integers(0, 256, (3, ROWS, COLS, 3), dtype=np.uint8)
ds = dataset(ExplicitVRBigEndian, 3, 'RGB', samples=3, planar=1)
planar = np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))
save('rgb8_planar_be.dcm', ds, planar.tobytes(), rgb)
check = reread(f'{OUT}/rgb8_planar_be.dcm').pixel_array
assert (check == rgb).all(), 'pydicom does not read back its own planar RGB'

# 5. YBR_FULL: pixels converted by pydicom, the expected RGB is pydicom's conversion back.
ybr = convert_color_space(rgb, 'RGB', 'YBR_FULL')
ds = dataset(ExplicitVRLittleEndian, 3, 'YBR_FULL', samples=3)
save('ybr_full.dcm', ds, ybr.tobytes(), convert_color_space(ybr, 'YBR_FULL', 'RGB'))

# 6. PALETTE COLOR, 16-bit tables; pydicom's apply_color_lut, reduced to 8 bits as we do.
index = rng.integers(0, 256, (2, ROWS, COLS), dtype=np.uint8)
ds = dataset(ExplicitVRLittleEndian, 2, 'PALETTE COLOR')
for colour, scale in (('Red', 3), ('Green', 5), ('Blue', 7)):
    table = ((np.arange(256) * scale) % 256 * 257).astype('<u2')
    setattr(ds, f'{colour}PaletteColorLookupTableDescriptor', [256, 0, 16])
    setattr(ds, f'{colour}PaletteColorLookupTableData', table.tobytes())
ds.PixelData = index.tobytes()
lut = apply_color_lut(index, ds)
save('palette16.dcm', ds, index.tobytes(), (lut >> 8))

# 7. RLE lossless, 8-bit RGB and 16-bit grey, compressed by pydicom's own RLE encoder.
ds = dataset(ExplicitVRLittleEndian, 3, 'RGB', samples=3)
ds.PixelData = rgb.tobytes()
ds.compress(RLELossless, encoding_plugin='pydicom')
ds.save_as(f'{OUT}/rgb8_rle.dcm', write_like_original=False)
back = reread(f'{OUT}/rgb8_rle.dcm').pixel_array
assert (back == rgb).all(), 'pydicom does not read back its own RLE'
rgb.tofile(f'{OUT}/rgb8_rle.dcm.rgb')
cases.append({'name': 'rgb8_rle.dcm', 'file': f'{OUT}/rgb8_rle.dcm', 'expected': f'{OUT}/rgb8_rle.dcm.rgb', 'frames': 3,
              'rows': ROWS, 'columns': COLS, 'fps': None, 'tolerance': 0})

deep = rng.integers(0, 4096, (2, ROWS, COLS), dtype=np.uint16)
ds = dataset(ExplicitVRLittleEndian, 2, 'MONOCHROME2', bits=16, stored=12)
ds.PixelData = deep.astype('<u2').tobytes()
ds.compress(RLELossless, encoding_plugin='pydicom')
ds.save_as(f'{OUT}/grey12_rle.dcm', write_like_original=False)
back = reread(f'{OUT}/grey12_rle.dcm').pixel_array
assert (back == deep).all(), 'pydicom does not read back its own 16-bit RLE'
# No window: the 12 stored bits map linearly onto 0..255.
as_rgb(np.floor(back.astype(np.float64) * 255 / 4095 + 0.5)).astype(np.uint8).tofile(f'{OUT}/grey12_rle.dcm.rgb')
cases.append({'name': 'grey12_rle.dcm', 'file': f'{OUT}/grey12_rle.dcm', 'expected': f'{OUT}/grey12_rle.dcm.rgb', 'frames': 2,
              'rows': ROWS, 'columns': COLS, 'fps': None, 'tolerance': 1})

# Every file must also be one pydicom reads back to the same pixels it was given.
for case in cases:
    again = reread(case['file'])
    assert again.NumberOfFrames == case['frames']

print(json.dumps({'pydicom': pydicom.__version__, 'cases': cases}))
