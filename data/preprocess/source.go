package preprocess

import "fmt"

// rowSource is a decoded image in the mode Pillow would open it in, read
// row by row from the top, so that large images are never held as one
// interleaved buffer: the resampler consumes each row as it is produced.
type rowSource interface {
	// info returns the Pillow mode, the size and, for mode P, the palette.
	info() (m mode, w, h int, palette [][3]uint8)
	// readRows calls fn for rows from, from+1, ..., to-1, in that order,
	// each holding columns [x0, x1) of that row, mode.channels() bytes per
	// pixel. The slice is only valid during the call. Sources that have to
	// decode rows sequentially decode (and drop) the rows before from.
	// readRows is called at most once per source.
	readRows(from, to, x0, x1 int, fn func(y int, row []uint8)) error
}

// The in-memory raster is a rowSource too: the fallback for images decoded
// whole (interlaced PNGs, CMYK JPEGs, images given as image.Image).
func (r *raster) info() (mode, int, int, [][3]uint8) { return r.mode, r.w, r.h, r.palette }

func (r *raster) readRows(from, to, x0, x1 int, fn func(y int, row []uint8)) error {
	if r.mode == modeI {
		return fmt.Errorf("preprocess: internal error: mode I raster read as 8-bit rows")
	}
	ch := r.mode.channels()
	for y := from; y < to; y++ {
		fn(y, r.pix[(y*r.w+x0)*ch:(y*r.w+x1)*ch])
	}
	return nil
}

// materialize reads a whole source into a raster (a no-op for rasters).
func materialize(src rowSource) (*raster, error) {
	if r, ok := src.(*raster); ok {
		return r, nil
	}
	m, w, h, pal := src.info()
	ch := m.channels()
	r := &raster{mode: m, w: w, h: h, palette: pal, pix: make([]uint8, w*h*ch)}
	err := src.readRows(0, h, 0, w, func(y int, row []uint8) {
		copy(r.pix[y*w*ch:(y+1)*w*ch], row)
	})
	return r, err
}
