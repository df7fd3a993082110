package prepare

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/png"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/bmca/bmca/eval/tasks"
	"github.com/parquet-go/parquet-go"
)

// npyArray is a C-order NumPy array read from a .npy member.
type npyArray struct {
	descr string // '|u1', '<i8', …
	shape []int
	data  []byte
}

var (
	descrRE = regexp.MustCompile(`'descr':\s*'([^']+)'`)
	orderRE = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRE = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// readNPY parses the NumPy .npy format (versions 1 to 3).
func readNPY(r io.Reader, name string) (*npyArray, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(data) < 10 || string(data[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("%s: not a .npy array", name)
	}
	var hlen, start int
	switch data[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(data[8:])), 10
	case 2, 3:
		if len(data) < 12 {
			return nil, fmt.Errorf("%s: truncated header", name)
		}
		hlen, start = int(binary.LittleEndian.Uint32(data[8:])), 12
	default:
		return nil, fmt.Errorf("%s: .npy version %d", name, data[6])
	}
	if start+hlen > len(data) {
		return nil, fmt.Errorf("%s: truncated header", name)
	}
	header := string(data[start : start+hlen])
	a := &npyArray{data: data[start+hlen:]}
	m := descrRE.FindStringSubmatch(header)
	if m == nil {
		return nil, fmt.Errorf("%s: no descr in header %q", name, header)
	}
	a.descr = m[1]
	if o := orderRE.FindStringSubmatch(header); o == nil || o[1] != "False" {
		return nil, fmt.Errorf("%s: only C-order arrays are read", name)
	}
	s := shapeRE.FindStringSubmatch(header)
	if s == nil {
		return nil, fmt.Errorf("%s: no shape in header %q", name, header)
	}
	n := 1
	for _, d := range strings.Split(s[1], ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		v, err := strconv.Atoi(d)
		if err != nil {
			return nil, fmt.Errorf("%s: shape %q", name, s[1])
		}
		a.shape = append(a.shape, v)
		n *= v
	}
	size := map[string]int{"|u1": 1, "<u1": 1, "|i1": 1, "<i2": 2, "<u2": 2, "<i4": 4, "<u4": 4, "<i8": 8, "<u8": 8}[a.descr]
	if size == 0 {
		return nil, fmt.Errorf("%s: dtype %s (unsigned 8-bit images and integer labels are read)", name, a.descr)
	}
	if len(a.data) < n*size {
		return nil, fmt.Errorf("%s: %d data bytes for shape %v of %s", name, len(a.data), a.shape, a.descr)
	}
	return a, nil
}

// int returns element i of an integer array.
func (a *npyArray) int(i int) int64 {
	switch a.descr {
	case "|u1", "<u1":
		return int64(a.data[i])
	case "|i1":
		return int64(int8(a.data[i]))
	case "<i2":
		return int64(int16(binary.LittleEndian.Uint16(a.data[2*i:])))
	case "<u2":
		return int64(binary.LittleEndian.Uint16(a.data[2*i:]))
	case "<i4":
		return int64(int32(binary.LittleEndian.Uint32(a.data[4*i:])))
	case "<u4":
		return int64(binary.LittleEndian.Uint32(a.data[4*i:]))
	default:
		return int64(binary.LittleEndian.Uint64(a.data[8*i:]))
	}
}

// npzRow is one example in the Hugging Face image layout eval/formats reads.
type npzRow struct {
	Image struct {
		Bytes []byte `parquet:"bytes"`
		Path  string `parquet:"path"`
	} `parquet:"image"`
	Label int64 `parquet:"label"`
}

// npzMultiRow is npzRow with a multi-hot label (ChestMNIST's 14 findings),
// which a zeroshot_multilabel task reads with label_format multi_hot.
type npzMultiRow struct {
	Image struct {
		Bytes []byte `parquet:"bytes"`
		Path  string `parquet:"path"`
	} `parquet:"image"`
	Label []int64 `parquet:"label,list"`
}

// npzToParquet writes <split>_images/<split>_labels of an .npz as parquet:
// labels of shape (N,) or (N, 1) as one integer per row, (N, C) multi-hot
// labels as a list of C integers.
func (e *env) npzToParquet(ctx context.Context, s *tasks.NPZStep) error {
	file := e.path(s.NPZ)
	zr, err := zip.OpenReader(file)
	if err != nil {
		return err
	}
	defer zr.Close()
	arrays := map[string]*npyArray{}
	for _, f := range zr.File {
		name := strings.TrimSuffix(f.Name, ".npy")
		if name != s.Split+"_images" && name != s.Split+"_labels" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		a, err := readNPY(rc, file+":"+f.Name)
		rc.Close()
		if err != nil {
			return err
		}
		arrays[name] = a
	}
	imgs, labels := arrays[s.Split+"_images"], arrays[s.Split+"_labels"]
	if imgs == nil || labels == nil {
		return fmt.Errorf("%s: no %s_images and %s_labels arrays", file, s.Split, s.Split)
	}
	if imgs.descr != "|u1" && imgs.descr != "<u1" {
		return fmt.Errorf("%s: %s_images are %s, want uint8", file, s.Split, imgs.descr)
	}
	if len(imgs.shape) < 3 || len(imgs.shape) > 4 || (len(imgs.shape) == 4 && imgs.shape[3] != 3) {
		return fmt.Errorf("%s: %s_images have shape %v, want (N, H, W) or (N, H, W, 3)", file, s.Split, imgs.shape)
	}
	n, h, w := imgs.shape[0], imgs.shape[1], imgs.shape[2]
	if len(labels.shape) == 0 || labels.shape[0] != n || len(labels.shape) > 2 || (len(labels.shape) == 2 && labels.shape[1] < 1) {
		return fmt.Errorf("%s: %s_labels have shape %v for %d images, want (N,), (N, 1) or multi-hot (N, C)", file, s.Split, labels.shape, n)
	}
	classes := 1
	if len(labels.shape) == 2 {
		classes = labels.shape[1]
	}
	channels := 1
	if len(imgs.shape) == 4 {
		channels = 3
	}
	rows := make([]npzRow, n)
	var multi []npzMultiRow
	if classes > 1 {
		multi = make([]npzMultiRow, n)
	}
	per := h * w * channels
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		pix := imgs.data[i*per : (i+1)*per]
		var img image.Image
		if channels == 1 {
			img = &image.Gray{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h)}
		} else {
			rgba := image.NewNRGBA(image.Rect(0, 0, w, h))
			for p := range h * w {
				copy(rgba.Pix[4*p:4*p+3], pix[3*p:3*p+3])
				rgba.Pix[4*p+3] = 255
			}
			img = rgba
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return err
		}
		path := fmt.Sprintf("%s_%06d.png", s.Split, i)
		if multi != nil {
			multi[i].Image.Bytes, multi[i].Image.Path = buf.Bytes(), path
			multi[i].Label = make([]int64, classes)
			for k := range classes {
				multi[i].Label[k] = labels.int(i*classes + k)
			}
			continue
		}
		rows[i].Image.Bytes, rows[i].Image.Path = buf.Bytes(), path
		rows[i].Label = labels.int(i)
	}
	var out bytes.Buffer
	if multi != nil {
		err = writeParquetRows(&out, multi)
	} else {
		err = writeParquetRows(&out, rows)
	}
	if err != nil {
		return err
	}
	return writeAtomic(e.path(s.Out), out.Bytes())
}

// writeParquetRows writes rows with the image bytes kept out of the page
// statistics.
func writeParquetRows[T any](out io.Writer, rows []T) error {
	pw := parquet.NewGenericWriter[T](out, parquet.SkipPageBounds("image", "bytes"))
	if _, err := pw.Write(rows); err != nil {
		return err
	}
	return pw.Close()
}
