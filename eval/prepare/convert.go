package prepare

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // decoders image.Decode needs
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/bmca/bmca/eval/prepare/dicom"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
)

// decodeAny decodes a DICOM, TIFF, BMP, JPEG or PNG file to an image an
// 8-bit PNG can hold: DICOM through its modality and VOI transforms
// (eval/prepare/dicom), 16-bit greyscale stretched linearly from the image's
// minimum to its maximum (microscopy channels use a few thousand of the
// 65,536 levels, so a plain shift would leave them black).
func decodeAny(data []byte) (image.Image, error) {
	if len(data) >= 132 && string(data[128:132]) == "DICM" {
		im, err := dicom.Decode(data)
		if err != nil {
			return nil, err
		}
		return im.Render()
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	switch g := img.(type) {
	case *image.Gray16:
		return stretch16(g), nil
	case *image.RGBA64, *image.NRGBA64:
		return img, nil // png.Encode writes 16-bit colour; preprocessing reads it
	}
	return img, nil
}

// stretch16 maps a 16-bit greyscale image's range onto 0..255.
func stretch16(g *image.Gray16) *image.Gray {
	b := g.Bounds()
	lo, hi := uint16(math.MaxUint16), uint16(0)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			v := g.Gray16At(x, y).Y
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	out := image.NewGray(b)
	scale := 0.0
	if hi > lo {
		scale = 255 / float64(hi-lo)
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			v := float64(g.Gray16At(x, y).Y-lo) * scale
			out.Pix[(y-b.Min.Y)*out.Stride+(x-b.Min.X)] = uint8(math.Round(v))
		}
	}
	return out
}

// convertToPNG decodes src and writes dst as PNG (atomically); an existing
// dst is kept.
func convertToPNG(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	img, err := decodeAny(data)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return writeAtomic(dst, buf.Bytes())
}

// pngName is the converted file's path: rel under dir with a .png
// extension.
func pngName(dir, rel string) string {
	return filepath.Join(dir, strings.TrimSuffix(rel, filepath.Ext(rel))+".png")
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first
// error; it stops handing out work once one fails or ctx ends.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
