// Package dicom reads the single images of DICOM files that evaluation data
// sets ship (RSNA pneumonia chest radiographs and the like) and renders them
// as 8-bit images for PNG conversion. It is the smallest reader those files
// need, not a general DICOM toolkit: no Go DICOM library is served by the Go
// module proxy this project builds from.
//
//	im, err := dicom.Decode(data)
//	gray, err := im.Render()   // modality LUT, VOI window, MONOCHROME1 inverted
//	png.Encode(w, gray)
//
// Supported: files with the "DICM" preamble; transfer syntaxes Explicit VR
// Little Endian, Implicit VR Little Endian and JPEG Baseline (process 1,
// 8-bit, decoded by image/jpeg); MONOCHROME1, MONOCHROME2 and RGB; 8 and 16
// bits allocated, signed or unsigned, Bits Stored below Bits Allocated;
// Rescale Slope/Intercept; the first Window Center/Width pair with the
// LINEAR, LINEAR_EXACT or SIGMOID VOI function. Multi-frame files give their
// first frame. Big endian, deflated and the other compressed syntaxes (JPEG
// lossless, JPEG-LS, JPEG 2000, RLE) are refused with an error naming the
// syntax; Modality and VOI LUT sequences are ignored (the window tags or the
// image's range are used instead).
package dicom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"strconv"
	"strings"
)

// Transfer syntax UIDs this package knows by name.
const (
	ImplicitVRLittleEndian = "1.2.840.10008.1.2"
	ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
	ExplicitVRBigEndian    = "1.2.840.10008.1.2.2"
	DeflatedExplicitVR     = "1.2.840.10008.1.2.1.99"
	JPEGBaseline           = "1.2.840.10008.1.2.4.50"
)

// syntaxNames names the compressed syntaxes that are refused, for errors.
var syntaxNames = map[string]string{
	ExplicitVRBigEndian:       "Explicit VR Big Endian",
	DeflatedExplicitVR:        "Deflated Explicit VR Little Endian",
	"1.2.840.10008.1.2.4.51":  "JPEG Extended (12-bit)",
	"1.2.840.10008.1.2.4.57":  "JPEG Lossless",
	"1.2.840.10008.1.2.4.70":  "JPEG Lossless SV1",
	"1.2.840.10008.1.2.4.80":  "JPEG-LS Lossless",
	"1.2.840.10008.1.2.4.81":  "JPEG-LS Near-Lossless",
	"1.2.840.10008.1.2.4.90":  "JPEG 2000 Lossless",
	"1.2.840.10008.1.2.4.91":  "JPEG 2000",
	"1.2.840.10008.1.2.5":     "RLE Lossless",
	"1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
	"1.2.840.10008.1.2.4.203": "HTJ2K",
}

// ErrUnsupported is wrapped by errors about files this reader does not handle.
var ErrUnsupported = errors.New("unsupported DICOM")

// Image is the pixel module of a DICOM file.
type Image struct {
	TransferSyntax string
	Rows, Columns  int
	// SamplesPerPixel is 1 for monochrome, 3 for RGB.
	SamplesPerPixel int
	// Photometric is the Photometric Interpretation (MONOCHROME1,
	// MONOCHROME2, RGB, YBR_FULL, …).
	Photometric   string
	BitsAllocated int
	BitsStored    int
	// Signed is Pixel Representation 1 (two's complement).
	Signed bool
	// Planar is Planar Configuration 1 (RGB stored plane by plane).
	Planar bool
	Frames int
	// Slope and Intercept map stored values to modality values (1 and 0
	// when absent).
	Slope, Intercept float64
	// WindowCenter and WindowWidth are the VOI windows in the file (often
	// one), VOIFunction its VOI LUT Function ("" = LINEAR).
	WindowCenter, WindowWidth []float64
	VOIFunction               string

	stored  []int32     // first frame's stored values (monochrome or RGB interleaved), uncompressed syntaxes
	decoded image.Image // first frame, JPEG Baseline
}

// Decode parses a DICOM file held in memory.
func Decode(data []byte) (*Image, error) {
	if len(data) < 132 || string(data[128:132]) != "DICM" {
		return nil, fmt.Errorf("%w: no DICM marker at byte 128 (not a DICOM Part 10 file)", ErrUnsupported)
	}
	p := &parser{data: data, pos: 132, explicit: true}
	im := &Image{SamplesPerPixel: 1, Slope: 1, Frames: 1}
	// The file meta group is always Explicit VR Little Endian.
	for p.pos+2 <= len(data) {
		if binary.LittleEndian.Uint16(data[p.pos:]) != 0x0002 {
			break
		}
		el, err := p.next()
		if err != nil {
			return nil, fmt.Errorf("file meta: %w", err)
		}
		if el.tag == tag(0x0002, 0x0010) {
			im.TransferSyntax = trimValue(el.value)
		}
	}
	switch im.TransferSyntax {
	case ExplicitVRLittleEndian, JPEGBaseline:
	case ImplicitVRLittleEndian:
		p.explicit = false
	case "":
		return nil, fmt.Errorf("%w: no transfer syntax in the file meta", ErrUnsupported)
	default:
		name := syntaxNames[im.TransferSyntax]
		if name == "" {
			name = "unknown"
		}
		return nil, fmt.Errorf("%w: transfer syntax %s (%s) is not read here; decompress first, e.g. `gdcmconv --raw in.dcm out.dcm` or dcmtk's `dcmdjpeg`", ErrUnsupported, im.TransferSyntax, name)
	}
	var pixel *element
	for p.pos < len(data) {
		el, err := p.next()
		if err != nil {
			return nil, err
		}
		if el.tag == tag(0x7FE0, 0x0010) {
			pixel = &el
			break
		}
		if err := im.set(el); err != nil {
			return nil, err
		}
	}
	if pixel == nil {
		return nil, fmt.Errorf("%w: no Pixel Data element", ErrUnsupported)
	}
	if im.Rows <= 0 || im.Columns <= 0 {
		return nil, fmt.Errorf("%w: image size %d×%d", ErrUnsupported, im.Columns, im.Rows)
	}
	if im.TransferSyntax == JPEGBaseline {
		return im, im.decodeJPEG(pixel)
	}
	return im, im.unpack(pixel.value)
}

// set records one element of the image pixel and VOI modules.
func (im *Image) set(el element) error {
	switch el.tag {
	case tag(0x0028, 0x0002):
		im.SamplesPerPixel = int(el.uint16())
	case tag(0x0028, 0x0004):
		im.Photometric = trimValue(el.value)
	case tag(0x0028, 0x0006):
		im.Planar = el.uint16() == 1
	case tag(0x0028, 0x0008):
		if n, err := strconv.Atoi(trimValue(el.value)); err == nil && n > 0 {
			im.Frames = n
		}
	case tag(0x0028, 0x0010):
		im.Rows = int(el.uint16())
	case tag(0x0028, 0x0011):
		im.Columns = int(el.uint16())
	case tag(0x0028, 0x0100):
		im.BitsAllocated = int(el.uint16())
	case tag(0x0028, 0x0101):
		im.BitsStored = int(el.uint16())
	case tag(0x0028, 0x0103):
		im.Signed = el.uint16() == 1
	case tag(0x0028, 0x1050):
		im.WindowCenter = decimals(el.value)
	case tag(0x0028, 0x1051):
		im.WindowWidth = decimals(el.value)
	case tag(0x0028, 0x1052):
		if v := decimals(el.value); len(v) > 0 {
			im.Intercept = v[0]
		}
	case tag(0x0028, 0x1053):
		if v := decimals(el.value); len(v) > 0 {
			im.Slope = v[0]
		}
	case tag(0x0028, 0x1056):
		im.VOIFunction = strings.ToUpper(trimValue(el.value))
	}
	return nil
}

// unpack reads the first frame of native (uncompressed) pixel data.
func (im *Image) unpack(raw []byte) error {
	if im.BitsAllocated != 8 && im.BitsAllocated != 16 {
		return fmt.Errorf("%w: %d bits allocated (8 and 16 are read)", ErrUnsupported, im.BitsAllocated)
	}
	if im.SamplesPerPixel != 1 && im.SamplesPerPixel != 3 {
		return fmt.Errorf("%w: %d samples per pixel", ErrUnsupported, im.SamplesPerPixel)
	}
	if im.SamplesPerPixel == 3 && im.Photometric != "RGB" {
		return fmt.Errorf("%w: uncompressed colour %s (only RGB is read)", ErrUnsupported, im.Photometric)
	}
	stored := im.BitsStored
	if stored <= 0 || stored > im.BitsAllocated {
		stored = im.BitsAllocated
	}
	n := im.Rows * im.Columns * im.SamplesPerPixel
	bytesPer := im.BitsAllocated / 8
	if len(raw) < n*bytesPer {
		return fmt.Errorf("%w: pixel data has %d bytes, a %d×%d×%d frame of %d-bit samples needs %d", ErrUnsupported, len(raw), im.Columns, im.Rows, im.SamplesPerPixel, im.BitsAllocated, n*bytesPer)
	}
	mask := uint32(1)<<stored - 1
	sign := uint32(1) << (stored - 1)
	im.stored = make([]int32, n)
	for i := range n {
		var u uint32
		if bytesPer == 1 {
			u = uint32(raw[i])
		} else {
			u = uint32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		u &= mask // bits above Bits Stored may hold overlays
		v := int32(u)
		if im.Signed && u&sign != 0 {
			v = int32(u) - int32(mask) - 1
		}
		im.stored[i] = v
	}
	if im.SamplesPerPixel == 3 && im.Planar {
		plane := im.Rows * im.Columns
		inter := make([]int32, n)
		for i := range plane {
			for c := range 3 {
				inter[3*i+c] = im.stored[c*plane+i]
			}
		}
		im.stored = inter
	}
	return nil
}

// decodeJPEG decodes the first fragment set of encapsulated JPEG Baseline
// pixel data.
func (im *Image) decodeJPEG(pixel *element) error {
	frame, err := firstFrame(pixel)
	if err != nil {
		return err
	}
	img, err := jpeg.Decode(bytes.NewReader(frame))
	if err != nil {
		return fmt.Errorf("JPEG Baseline pixel data: %w", err)
	}
	if b := img.Bounds(); b.Dx() != im.Columns || b.Dy() != im.Rows {
		return fmt.Errorf("JPEG Baseline pixel data is %d×%d, the header says %d×%d", b.Dx(), b.Dy(), im.Columns, im.Rows)
	}
	im.decoded = img
	return nil
}

// StoredValues returns the first frame's stored values (row-major, samples
// interleaved), before the modality LUT; nil for JPEG pixel data.
func (im *Image) StoredValues() []int32 { return im.stored }

// ModalityValues returns the first frame's values after Rescale Slope and
// Intercept (monochrome, uncompressed only; nil otherwise).
func (im *Image) ModalityValues() []float64 {
	if im.stored == nil || im.SamplesPerPixel != 1 {
		return nil
	}
	out := make([]float64, len(im.stored))
	for i, v := range im.stored {
		out[i] = float64(v)*im.Slope + im.Intercept
	}
	return out
}

// Render returns the first frame as an 8-bit image the way a viewer shows it
// by default: monochrome values go through the modality LUT, then the first
// VOI window of the file when it has one, else a linear map of the image's
// own range (values that already fit 8 bits, without rescaling, are kept as
// they are); MONOCHROME1 is inverted so that bright means dense in every
// output. RGB (uncompressed or JPEG) is returned as decoded.
func (im *Image) Render() (image.Image, error) {
	if im.decoded != nil {
		if g, ok := im.decoded.(*image.Gray); ok && im.Photometric == "MONOCHROME1" {
			for i, v := range g.Pix {
				g.Pix[i] = 255 - v
			}
		}
		return im.decoded, nil
	}
	if im.SamplesPerPixel == 3 {
		rgba := image.NewNRGBA(image.Rect(0, 0, im.Columns, im.Rows))
		for i := range im.Rows * im.Columns {
			for c := range 3 {
				rgba.Pix[4*i+c] = clamp8(float64(im.stored[3*i+c]) * 255 / float64(uint32(1)<<im.bitsStored()-1))
			}
			rgba.Pix[4*i+3] = 255
		}
		return rgba, nil
	}
	switch im.Photometric {
	case "MONOCHROME1", "MONOCHROME2", "":
	default:
		return nil, fmt.Errorf("%w: photometric interpretation %q with one sample", ErrUnsupported, im.Photometric)
	}
	vals := im.ModalityValues()
	out := image.NewGray(image.Rect(0, 0, im.Columns, im.Rows))
	switch {
	case len(im.WindowCenter) > 0 && len(im.WindowWidth) > 0 && im.WindowWidth[0] > 0:
		c, w := im.WindowCenter[0], im.WindowWidth[0]
		f, err := voi(im.VOIFunction, c, w)
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			out.Pix[i] = clamp8(f(v))
		}
	case im.Slope == 1 && im.Intercept == 0 && !im.Signed && im.bitsStored() <= 8:
		for i, v := range vals {
			out.Pix[i] = uint8(v)
		}
	default:
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range vals {
			lo, hi = min(lo, v), max(hi, v)
		}
		scale := 0.0
		if hi > lo {
			scale = 255 / (hi - lo)
		}
		for i, v := range vals {
			out.Pix[i] = clamp8((v - lo) * scale)
		}
	}
	if im.Photometric == "MONOCHROME1" {
		for i, v := range out.Pix {
			out.Pix[i] = 255 - v
		}
	}
	return out, nil
}

func (im *Image) bitsStored() int {
	if im.BitsStored <= 0 || im.BitsStored > im.BitsAllocated {
		return im.BitsAllocated
	}
	return im.BitsStored
}

// voi returns the VOI LUT function of DICOM PS3.3 C.11.2.1.2 mapping modality
// values to [0, 255] (unrounded).
func voi(function string, c, w float64) (func(float64) float64, error) {
	const ymax = 255.0
	switch function {
	case "", "LINEAR":
		if w < 1 {
			return nil, fmt.Errorf("%w: window width %v below 1 for the LINEAR function", ErrUnsupported, w)
		}
		return func(x float64) float64 {
			switch {
			case x <= c-0.5-(w-1)/2:
				return 0
			case x > c-0.5+(w-1)/2:
				return ymax
			}
			return ((x-(c-0.5))/(w-1) + 0.5) * ymax
		}, nil
	case "LINEAR_EXACT":
		return func(x float64) float64 {
			switch {
			case x <= c-w/2:
				return 0
			case x > c+w/2:
				return ymax
			}
			return ((x-c)/w + 0.5) * ymax
		}, nil
	case "SIGMOID":
		return func(x float64) float64 { return ymax / (1 + math.Exp(-4*(x-c)/w)) }, nil
	}
	return nil, fmt.Errorf("%w: VOI LUT function %q", ErrUnsupported, function)
}

func clamp8(v float64) uint8 {
	switch {
	case !(v > 0):
		return 0
	case v >= 255:
		return 255
	}
	return uint8(math.Round(v))
}

// decimals parses a DS/IS value with backslash-separated numbers.
func decimals(b []byte) []float64 {
	var out []float64
	for _, part := range strings.Split(trimValue(b), `\`) {
		if v, err := strconv.ParseFloat(strings.TrimSpace(part), 64); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// trimValue drops the padding DICOM puts after string values.
func trimValue(b []byte) string {
	return strings.TrimRight(string(b), " \x00")
}
