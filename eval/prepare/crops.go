package prepare

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"github.com/bmca/bmca/eval/tasks"
)

// box is one annotated object.
type box struct {
	x0, y0, x1, y1 int // pixel bounds, exclusive max
	label          string
}

// boxedImage is an image with its boxes.
type boxedImage struct {
	path  string // relative to the images folder
	boxes []box
}

// bbbc041File is the Broad Bioimage Benchmark Collection's malaria JSON:
// a list of images, each with objects whose bounding_box has minimum and
// maximum row/column corners.
type bbbc041File []struct {
	Image struct {
		Pathname string `json:"pathname"`
	} `json:"image"`
	Objects []struct {
		Category    string `json:"category"`
		BoundingBox struct {
			Minimum struct{ R, C float64 } `json:"minimum"`
			Maximum struct{ R, C float64 } `json:"maximum"`
		} `json:"bounding_box"`
	} `json:"objects"`
}

// cocoFile is the part of a COCO detection file crops need.
type cocoFile struct {
	Images []struct {
		ID       int64  `json:"id"`
		FileName string `json:"file_name"`
	} `json:"images"`
	Annotations []struct {
		ImageID    int64     `json:"image_id"`
		CategoryID int64     `json:"category_id"`
		BBox       []float64 `json:"bbox"`
	} `json:"annotations"`
	Categories []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"categories"`
}

func readBoxes(file, format string) ([]boxedImage, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []boxedImage
	switch format {
	case "bbbc041":
		var f bbbc041File
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("%s: not BBBC041 JSON (a list of {image, objects}): %w", file, err)
		}
		for _, im := range f {
			bi := boxedImage{path: strings.TrimPrefix(im.Image.Pathname, "/")}
			for _, o := range im.Objects {
				b := o.BoundingBox
				bi.boxes = append(bi.boxes, box{x0: int(b.Minimum.C), y0: int(b.Minimum.R), x1: int(b.Maximum.C), y1: int(b.Maximum.R), label: o.Category})
			}
			out = append(out, bi)
		}
	case "coco":
		var f cocoFile
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("%s: not COCO JSON: %w", file, err)
		}
		names := map[int64]string{}
		for _, c := range f.Categories {
			names[c.ID] = c.Name
		}
		index := map[int64]int{}
		for _, im := range f.Images {
			index[im.ID] = len(out)
			out = append(out, boxedImage{path: im.FileName})
		}
		for i, a := range f.Annotations {
			j, ok := index[a.ImageID]
			if !ok {
				return nil, fmt.Errorf("%s: annotation %d names image id %d, which is not in images", file, i, a.ImageID)
			}
			name, ok := names[a.CategoryID]
			if !ok {
				return nil, fmt.Errorf("%s: annotation %d has category id %d, which is not in categories", file, i, a.CategoryID)
			}
			if len(a.BBox) != 4 {
				return nil, fmt.Errorf("%s: annotation %d: bbox has %d numbers, want x, y, width, height", file, i, len(a.BBox))
			}
			x, y, w, h := a.BBox[0], a.BBox[1], a.BBox[2], a.BBox[3]
			out[j].boxes = append(out[j].boxes, box{x0: int(x), y0: int(y), x1: int(x + w + 0.5), y1: int(y + h + 0.5), label: name})
		}
	}
	return out, nil
}

// crops cuts one PNG per box and writes the path,label table.
func (e *env) crops(ctx context.Context, s *tasks.CropsStep) error {
	ann := e.path(s.Annotations)
	images, err := readBoxes(ann, s.Format)
	if err != nil {
		return err
	}
	root, cropDir := e.path(s.Images), e.path(s.Crops)
	rows := make([][]labelled, len(images))
	bar := countBar(e.log, len(images), "crop boxes")
	err = parallel(ctx, len(images), e.opts.Workers, func(i int) error {
		defer bar.Add(1)
		im := images[i]
		if len(im.boxes) == 0 {
			return nil
		}
		src := filepath.Join(root, filepath.FromSlash(im.path))
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("%s lists %s: %w", ann, im.path, err)
		}
		img, err := decodeAny(data)
		if err != nil {
			return err
		}
		stem := strings.TrimSuffix(filepath.FromSlash(im.path), filepath.Ext(im.path))
		for k, b := range im.boxes {
			r := image.Rect(b.x0, b.y0, b.x1, b.y1).Intersect(img.Bounds())
			if r.Empty() {
				return fmt.Errorf("%s: box %d of %s (%d,%d)-(%d,%d) lies outside the %v image", ann, k, im.path, b.x0, b.y0, b.x1, b.y1, img.Bounds().Size())
			}
			dst := filepath.Join(cropDir, fmt.Sprintf("%s_%03d.png", stem, k))
			if _, err := os.Stat(dst); err != nil {
				crop := image.NewNRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
				draw.Draw(crop, crop.Bounds(), img, r.Min, draw.Src)
				var buf bytes.Buffer
				if err := png.Encode(&buf, crop); err != nil {
					return err
				}
				if err := writeAtomic(dst, buf.Bytes()); err != nil {
					return err
				}
			}
			rows[i] = append(rows[i], labelled{src: dst, label: b.label})
		}
		return nil
	})
	_ = bar.Finish()
	if err != nil {
		return err
	}
	var all []labelled
	for _, r := range rows {
		all = append(all, r...)
	}
	if len(all) == 0 {
		return fmt.Errorf("%s: no boxes", ann)
	}
	return e.emit(ctx, s.Out, all, "", tasks.NoConvert, "", "")
}
