package preprocess

import (
	"image"
	"image/color"
)

// mode is the Pillow image mode an image would have after PIL.Image.open.
// It decides how the image is resized and how it becomes RGB afterwards.
type mode int

const (
	modeL    mode = iota // 8-bit grey, resized as one channel
	mode1                // bilevel (1-bit PNG), resized with NEAREST
	modeP                // palette indices, resized with NEAREST, looked up afterwards
	modeRGB              // 8-bit RGB
	modeRGBA             // 8-bit RGB with straight alpha, resized premultiplied
	modeCMYK             // 8-bit ink values (CMYK JPEG)
	modeI                // 32-bit integer grey (16-bit PNG), resized in double precision
)

// channels is the number of interleaved bytes per pixel of the 8-bit modes.
func (m mode) channels() int {
	switch m {
	case modeRGB:
		return 3
	case modeRGBA, modeCMYK:
		return 4
	}
	return 1
}

// raster is an image in Pillow's layout: interleaved channels, row-major.
type raster struct {
	mode    mode
	w, h    int
	pix     []uint8 // all modes but modeI
	ints    []int32 // modeI
	palette [][3]uint8
}

// toRaster converts a decoded image to the mode Pillow would open it in.
// info carries what the container said (zero for images not decoded here).
func toRaster(img image.Image, info decoded) raster {
	b := img.Bounds()
	r := raster{w: b.Dx(), h: b.Dy()}
	switch m := img.(type) {
	case *image.Gray:
		r.mode = modeL
		if info.format == formatPNG && info.pngColorType == pngGrey && info.pngBitDepth == 1 {
			r.mode = mode1
		}
		r.pix = packRows(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), r.w, r.h, 1)
		return r
	case *image.Paletted:
		r.mode = modeP
		r.pix = packRows(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), r.w, r.h, 1)
		r.palette = make([][3]uint8, len(m.Palette))
		for i, c := range m.Palette {
			r.palette[i] = straightRGB(c)
		}
		return r
	case *image.Gray16:
		// Pillow opens 16-bit grey PNGs as mode "I" holding 0..65535.
		r.mode = modeI
		r.ints = make([]int32, r.w*r.h)
		for y := range r.h {
			for x := range r.w {
				i := m.PixOffset(b.Min.X+x, b.Min.Y+y)
				r.ints[y*r.w+x] = int32(m.Pix[i])<<8 | int32(m.Pix[i+1])
			}
		}
		return r
	case *image.YCbCr:
		if rgb, ok := ycbcrToRGB(m, info.format == formatWebP); ok {
			r.mode, r.pix = modeRGB, rgb
			return r
		}
	case *image.NYCbCrA:
		if rgb, ok := ycbcrToRGB(&m.YCbCr, info.format == formatWebP); ok {
			alpha := packRows(m.A, m.AStride, m.AOffset(b.Min.X, b.Min.Y), r.w, r.h, 1)
			if isOpaque(alpha) {
				r.mode, r.pix = modeRGB, rgb
				return r
			}
			r.mode, r.pix = modeRGBA, make([]uint8, r.w*r.h*4)
			for i, a := range alpha {
				copy(r.pix[4*i:4*i+3], rgb[3*i:3*i+3])
				r.pix[4*i+3] = a
			}
			return r
		}
	case *image.CMYK:
		r.mode = modeCMYK
		r.pix = packRows(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), r.w, r.h, 4)
		return r
	case *image.NRGBA:
		rgba := packRows(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), r.w, r.h, 4)
		return fromRGBA(r, rgba, info)
	case *image.NRGBA64:
		// Pillow's 16-bit PNG unpackers keep the most significant byte.
		if info.format == formatPNG && info.pngColorType == pngGrey {
			return greyFrom16(r, m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), 8)
		}
		return fromRGBA(r, highBytes(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), r.w, r.h), info)
	case *image.RGBA64:
		if m.Opaque() {
			return fromRGBA(r, highBytes(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), r.w, r.h), info)
		}
	case *image.RGBA:
		if m.Opaque() {
			return fromRGBA(r, packRows(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), r.w, r.h, 4), info)
		}
	}
	// Anything else (premultiplied images with transparency, other image.Image
	// implementations, layouts ycbcrToRGB does not model) goes through Go's
	// colour model to straight RGBA.
	rgba := make([]uint8, r.w*r.h*4)
	for y := range r.h {
		for x := range r.w {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			p := rgba[4*(y*r.w+x):]
			p[0], p[1], p[2], p[3] = c.R, c.G, c.B, c.A
		}
	}
	return fromRGBA(r, rgba, info)
}

// crop returns the raster restricted to the window's source box (the raster
// itself when the box is all of it), with the box moved to the origin so
// that the whole-raster resamplers can work on it.
func (r *raster) crop(win window) *raster {
	if win.bx == 0 && win.by == 0 && win.bw == r.w && win.bh == r.h {
		return r
	}
	sub := &raster{mode: r.mode, w: win.bw, h: win.bh, palette: r.palette}
	if r.mode == modeI {
		sub.ints = make([]int32, win.bw*win.bh)
		for y := range win.bh {
			copy(sub.ints[y*win.bw:(y+1)*win.bw], r.ints[(win.by+y)*r.w+win.bx:])
		}
		return sub
	}
	ch := r.mode.channels()
	sub.pix = make([]uint8, win.bw*win.bh*ch)
	for y := range win.bh {
		copy(sub.pix[y*win.bw*ch:(y+1)*win.bw*ch], r.pix[((win.by+y)*r.w+win.bx)*ch:])
	}
	return sub
}

// fromRGBA picks RGB or RGBA for straight-alpha pixels. An opaque image is
// RGB (premultiplying by 255 changes nothing, so this is exact). A grey or
// RGB PNG that Go widened to NRGBA because of a tRNS chunk keeps Pillow's
// mode, which ignores the transparency.
func fromRGBA(r raster, rgba []uint8, info decoded) raster {
	ignoreAlpha := info.format == formatPNG && (info.pngColorType == pngGrey || info.pngColorType == pngTrueColor)
	if info.format == formatPNG && info.pngColorType == pngGrey {
		r.mode, r.pix = modeL, make([]uint8, r.w*r.h)
		if info.pngBitDepth == 1 {
			r.mode = mode1
		}
		for i := range r.pix {
			r.pix[i] = rgba[4*i]
		}
		return r
	}
	if !ignoreAlpha && !isOpaqueRGBA(rgba) {
		r.mode, r.pix = modeRGBA, rgba
		return r
	}
	r.mode, r.pix = modeRGB, make([]uint8, r.w*r.h*3)
	for i := range r.w * r.h {
		copy(r.pix[3*i:3*i+3], rgba[4*i:4*i+3])
	}
	return r
}

// greyFrom16 builds a mode-I raster from the first 16-bit channel of pixels
// that are step bytes apart.
func greyFrom16(r raster, pix []uint8, stride, off, step int) raster {
	r.mode, r.ints = modeI, make([]int32, r.w*r.h)
	for y := range r.h {
		for x := range r.w {
			i := off + y*stride + x*step
			r.ints[y*r.w+x] = int32(pix[i])<<8 | int32(pix[i+1])
		}
	}
	return r
}

// packRows copies a strided w×h region of ch-byte pixels into a dense slice.
func packRows(pix []uint8, stride, off, w, h, ch int) []uint8 {
	out := make([]uint8, w*h*ch)
	for y := range h {
		copy(out[y*w*ch:(y+1)*w*ch], pix[off+y*stride:])
	}
	return out
}

// highBytes keeps the most significant byte of each 16-bit RGBA sample.
func highBytes(pix []uint8, stride, off, w, h int) []uint8 {
	out := make([]uint8, w*h*4)
	for y := range h {
		row := pix[off+y*stride:]
		for i := range w * 4 {
			out[y*w*4+i] = row[2*i]
		}
	}
	return out
}

func isOpaque(alpha []uint8) bool {
	for _, a := range alpha {
		if a != 255 {
			return false
		}
	}
	return true
}

func isOpaqueRGBA(rgba []uint8) bool {
	for i := 3; i < len(rgba); i += 4 {
		if rgba[i] != 255 {
			return false
		}
	}
	return true
}

// straightRGB returns a palette colour without alpha, un-premultiplied, as
// Pillow's P→RGB conversion drops the palette's alpha.
func straightRGB(c color.Color) [3]uint8 {
	switch c := c.(type) {
	case color.RGBA:
		if c.A == 255 {
			return [3]uint8{c.R, c.G, c.B}
		}
	case color.NRGBA:
		return [3]uint8{c.R, c.G, c.B}
	}
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return [3]uint8{n.R, n.G, n.B}
}

// mulDiv255 is Pillow's MULDIV255: a*b/255 rounded, without a division.
func mulDiv255(a, b uint32) uint8 {
	t := a*b + 128
	return uint8(((t >> 8) + t) >> 8)
}

// premultiply is Pillow's RGBA→RGBa conversion, applied before resizing so
// that transparent pixels do not bleed their colour into their neighbours.
func premultiply(rgba []uint8) {
	for i := 0; i < len(rgba); i += 4 {
		a := uint32(rgba[i+3])
		for c := range 3 {
			rgba[i+c] = mulDiv255(uint32(rgba[i+c]), a)
		}
	}
}

// unpremultiply is Pillow 9.4's RGBa→RGBA conversion (rgba2rgbA): integer
// division, truncating, skipped for fully opaque and fully transparent pixels.
func unpremultiply(rgba []uint8) {
	for i := 0; i < len(rgba); i += 4 {
		a := uint32(rgba[i+3])
		if a == 0 || a == 255 {
			continue
		}
		for c := range 3 {
			rgba[i+c] = uint8(min(255*uint32(rgba[i+c])/a, 255))
		}
	}
}

// rgbAt returns pixel i of a resized and cropped raster as RGB, the way
// Pillow's convert("RGB") maps each mode.
func (r raster) rgbAt(i int) (uint8, uint8, uint8) {
	switch r.mode {
	case modeRGB:
		return r.pix[3*i], r.pix[3*i+1], r.pix[3*i+2]
	case modeRGBA:
		return r.pix[4*i], r.pix[4*i+1], r.pix[4*i+2]
	case modeP:
		idx := int(r.pix[i])
		if idx < len(r.palette) {
			c := r.palette[idx]
			return c[0], c[1], c[2]
		}
		// Pillow fills the unset tail of a palette with a grey ramp.
		return r.pix[i], r.pix[i], r.pix[i]
	case modeCMYK:
		// Pillow's cmyk2rgb: no colour management, just ink subtraction.
		nk := 255 - uint32(r.pix[4*i+3])
		sub := func(ink uint8) uint8 { return clampByte(int32(nk) - int32(mulDiv255(uint32(ink), nk))) }
		return sub(r.pix[4*i]), sub(r.pix[4*i+1]), sub(r.pix[4*i+2])
	case modeI:
		v := clampByte(r.ints[i])
		return v, v, v
	}
	return r.pix[i], r.pix[i], r.pix[i] // L and 1
}
