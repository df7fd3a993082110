package preprocess

import (
	jpegdec "github.com/bmca/bmca/data/preprocess/internal/jpeg"
)

// jpegSource serves rows of a JPEG decoded into planes: greyscale rows are
// the luma plane itself; colour rows are upsampled and converted on demand
// with libjpeg-turbo's fancy upsampling and integer YCbCr→RGB transform,
// only for the columns the resampler reads.
type jpegSource struct {
	img *jpegdec.Image
}

func (s *jpegSource) info() (mode, int, int, [][3]uint8) {
	if s.img.ColorSpace == jpegdec.Gray {
		return modeL, s.img.Width, s.img.Height, nil
	}
	return modeRGB, s.img.Width, s.img.Height, nil
}

func (s *jpegSource) readRows(from, to, x0, x1 int, fn func(y int, row []uint8)) error {
	img := s.img
	if img.ColorSpace == jpegdec.Gray {
		c := img.Components[0]
		for y := from; y < to; y++ {
			fn(y, c.Pix[y*c.Stride+x0:y*c.Stride+x1])
		}
		return nil
	}
	n := x1 - x0
	out := make([]uint8, 3*n)
	cbC, crC := img.Components[1], img.Components[2]
	if img.ColorSpace == jpegdec.YCbCr && img.Components[0].HFactor == 1 && img.Components[0].VFactor == 1 &&
		cbC.HFactor == 2 && cbC.Fancy && crC.HFactor == 2 && crC.Fancy && cbC.VFactor == crC.VFactor &&
		cbC.Width == crC.Width && cbC.Height == crC.Height {
		// 4:2:0 or 4:2:2 with libjpeg's fancy upsampling: fused.
		yc := img.Components[0]
		cb := plane{pix: cbC.Pix, stride: cbC.Stride, w: cbC.Width, h: cbC.Height}
		cr := plane{pix: crC.Pix, stride: crC.Stride, w: crC.Width, h: crC.Height}
		cbv, crv := make([]int32, cb.w+2), make([]int32, cr.w+2)
		lo, hi := max(x0/2-1, 0), min((x1-1)/2+1, cb.w-1)
		bias0, bias1, shift := int32(1), int32(2), uint(2)
		if cbC.VFactor == 2 {
			bias0, bias1, shift = 8, 7, 4
		}
		for y := from; y < to; y++ {
			chromaSums(cbv, cb, cbC.VFactor, y, lo, hi)
			chromaSums(crv, cr, crC.VFactor, y, lo, hi)
			ycc.convertFancy2(out, yc.Pix[y*yc.Stride+x0:y*yc.Stride+x1], cbv, crv, x0, bias0, bias1, shift)
			fn(y, out)
		}
		return nil
	}
	var rows [3][]uint8 // columns [x0, x1) of each component at full resolution
	var scratch [3][]uint8
	var colsum []int32
	for i := range 3 {
		scratch[i] = make([]uint8, n)
		colsum = make([]int32, max(len(colsum), img.Components[i].Width+2))
	}
	for y := from; y < to; y++ {
		for i := range 3 {
			c := img.Components[i]
			if c.HFactor == 1 && c.VFactor == 1 {
				rows[i] = c.Pix[y*c.Stride+x0 : y*c.Stride+x1]
				continue
			}
			p := plane{pix: c.Pix, stride: c.Stride, w: c.Width, h: c.Height}
			upsampleSpan(scratch[i], p, c.HFactor, c.VFactor, c.Fancy, y, x0, colsum)
			rows[i] = scratch[i]
		}
		if img.ColorSpace == jpegdec.RGB {
			for i := range n {
				out[3*i], out[3*i+1], out[3*i+2] = rows[0][i], rows[1][i], rows[2][i]
			}
		} else {
			ycc.convert(out, rows[0], rows[1], rows[2])
		}
		fn(y, out)
	}
	return nil
}
