package preprocess

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	jpegdec "github.com/bmca/bmca/data/preprocess/internal/jpeg"
)

// Augment is OpenCLIP's default training transform: torchvision's
// RandomResizedCrop(ImageSize, scale, ratio, BICUBIC), then conversion to
// RGB, ToTensor and Normalize. The zero value selects OpenCLIP's defaults.
// Its YAML keys are those of a run config's data.augment section.
type Augment struct {
	// Scale bounds the crop's area as a fraction of the image's;
	// zero means OpenCLIP's (0.9, 1.0).
	Scale [2]float64 `yaml:"scale"`
	// Ratio bounds the crop's aspect ratio (width/height), sampled
	// log-uniformly; zero means torchvision's (3/4, 4/3).
	Ratio [2]float64 `yaml:"ratio"`
}

// Validate reports crop bounds that cannot be sampled, naming the field by
// its YAML key.
func (a Augment) Validate() error {
	_, err := a.withDefaults()
	return err
}

func (a Augment) withDefaults() (Augment, error) {
	if a.Scale == [2]float64{} {
		a.Scale = [2]float64{0.9, 1.0} // open_clip_train's image_transform(is_train=True)
	}
	if a.Ratio == [2]float64{} {
		a.Ratio = [2]float64{3.0 / 4, 4.0 / 3} // torchvision's default
	}
	if !(a.Scale[0] > 0 && a.Scale[0] <= a.Scale[1] && a.Scale[1] <= 1) {
		return a, fmt.Errorf("scale: must satisfy 0 < min ≤ max ≤ 1, got %v", a.Scale)
	}
	if !(a.Ratio[0] > 0 && a.Ratio[0] <= a.Ratio[1]) {
		return a, fmt.Errorf("ratio: must satisfy 0 < min ≤ max, got %v", a.Ratio)
	}
	return a, nil
}

// Train returns the training transform: a function of the encoded image and
// a per-sample seed. The same bytes and seed always give the same tensor, so
// a stream that derives the seed from the sample's position stays
// reproducible whatever the number of workers.
func (c Config) Train(a Augment) (func(encoded []byte, seed uint64) ([]float32, error), error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	a, err := a.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("preprocess: augment %w", err)
	}
	planar := c.DCTScaling && (c.JPEG == "" || c.JPEG == JPEGGo)
	lut := c.normLUT()
	var scratch sync.Pool // *trainScratch, one per concurrent call
	return func(encoded []byte, seed uint64) ([]float32, error) {
		if planar {
			s, _ := scratch.Get().(*trainScratch)
			if s == nil {
				s = new(trainScratch)
			}
			t, err := c.trainPlanar(encoded, a, seed, s, lut)
			scratch.Put(s)
			if !errors.Is(err, errNotPlanar) {
				return t, err
			}
		}
		return c.trainGeneral(encoded, a, seed)
	}, nil
}

// cropRNG is the random source a sample's crop is drawn from: the same for
// the planar and the general path, so that a JPEG the planar path gives up
// on gets the same crop from the general one.
func cropRNG(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// trainGeneral is the training transform as a composition of the eval
// path's steps: decode (at the DCT scale Pillow's draft would pick, with
// DCTScaling) into Pillow's mode, resize the crop box, convert to RGB,
// normalise. Without DCTScaling it is Pillow-exact for a given crop.
func (c Config) trainGeneral(encoded []byte, a Augment, seed uint64) ([]float32, error) {
	rng := cropRNG(seed)
	return c.trainGeneralCrop(encoded, func(w, h int) (top, left, ch, cw int) { return a.cropParams(rng, w, h) })
}

// trainGeneralCrop is trainGeneral for the crop that crop draws for a w×h
// image.
func (c Config) trainGeneralCrop(encoded []byte, crop func(w, h int) (top, left, ch, cw int)) ([]float32, error) {
	var top, left, ch, cw, scale int
	src, err := c.open(encoded, func(w, h int) int {
		top, left, ch, cw = crop(w, h)
		scale = 1
		if c.DCTScaling {
			scale = draftScale(cw, ch, c.ImageSize, c.ImageSize)
		}
		return scale
	})
	if err != nil {
		return nil, err
	}
	_, sw, sh, _ := src.info()
	win := window{bx: left, by: top, bw: cw, bh: ch}
	if scale > 1 {
		// The crop box in the DCT-scaled image, rounded to whole pixels.
		s := float64(scale)
		x0, y0 := int(math.Round(float64(left)/s)), int(math.Round(float64(top)/s))
		x1 := min(int(math.Round(float64(left+cw)/s)), sw)
		y1 := min(int(math.Round(float64(top+ch)/s)), sh)
		win = window{bx: x0, by: y0, bw: max(x1-x0, 1), bh: max(y1-y0, 1)}
	}
	win.outW, win.outH, win.w, win.h = c.ImageSize, c.ImageSize, c.ImageSize, c.ImageSize
	return c.transform(src, win)
}

// trainPlanar is the training transform through trainJPEG, for the JPEGs
// the pure-Go decoder reads. Anything else, and any JPEG that fails to
// decode, gives errNotPlanar: the general path then draws the same crop from
// the same seed and reports the error as it always has.
func (c Config) trainPlanar(encoded []byte, a Augment, seed uint64, s *trainScratch, lut *normLUT) ([]float32, error) {
	if f, err := detectFormat(encoded); err != nil || f != formatJPEG {
		return nil, errNotPlanar
	}
	rng := cropRNG(seed)
	var crop cropBox
	sizes := func(f jpegdec.Frame) (n [jpegdec.MaxComponents]int) {
		if checkSize(formatJPEG, f.Width, f.Height) != nil {
			return n // refused (size 0): the general path reports it
		}
		crop.top, crop.left, crop.h, crop.w = a.cropParams(rng, f.Width, f.Height)
		return c.blockSizes(f, crop)
	}
	return c.trainJPEG(encoded, sizes, &crop, s, lut)
}

// blockSizes picks, for each component of a frame, the smallest DCT block
// size (N/8 of the component's resolution) at which the crop still covers
// ImageSize samples each way, so that the decoder does no more work than
// the resize needs and the resize has the fewest samples to read. A crop
// less than 8/7 of ImageSize across in the luma takes every component at
// full size, as at Pillow's draft scale 1 (the chroma then through libjpeg's
// upsampling, folded into its resize).
func (c Config) blockSizes(f jpegdec.Frame, crop cropBox) (n [jpegdec.MaxComponents]int) {
	size := func(hf, vf int) int {
		nx := (8*c.ImageSize*hf + crop.w - 1) / crop.w
		ny := (8*c.ImageSize*vf + crop.h - 1) / crop.h
		return min(max(nx, ny, 1), 8)
	}
	luma := size(1, 1)
	for i := range f.Components {
		n[i] = 8
		if luma < 8 {
			n[i] = size(f.HMax/f.H[i], f.VMax/f.V[i])
		}
	}
	return n
}

// cropParams is torchvision's RandomResizedCrop.get_params for a w×h image:
// up to ten tries at a random area and log-uniform aspect ratio that fits,
// then a centre crop clamped to the ratio bounds. It returns the crop's top,
// left, height and width. Python's round (half to even) is reproduced.
func (a Augment) cropParams(rng *rand.Rand, w, h int) (top, left, ch, cw int) {
	area := float64(w * h)
	logLo, logHi := math.Log(a.Ratio[0]), math.Log(a.Ratio[1])
	for range 10 {
		target := area * (a.Scale[0] + rng.Float64()*(a.Scale[1]-a.Scale[0]))
		ratio := math.Exp(logLo + rng.Float64()*(logHi-logLo))
		cw = int(math.RoundToEven(math.Sqrt(target * ratio)))
		ch = int(math.RoundToEven(math.Sqrt(target / ratio)))
		if cw > 0 && cw <= w && ch > 0 && ch <= h {
			top = rng.IntN(h - ch + 1)
			left = rng.IntN(w - cw + 1)
			return top, left, ch, cw
		}
	}
	inRatio := float64(w) / float64(h)
	switch {
	case inRatio < a.Ratio[0]:
		cw, ch = w, int(math.RoundToEven(float64(w)/a.Ratio[0]))
	case inRatio > a.Ratio[1]:
		ch, cw = h, int(math.RoundToEven(float64(h)*a.Ratio[1]))
	default:
		cw, ch = w, h
	}
	return (h - ch) / 2, (w - cw) / 2, ch, cw
}
