package formats

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// npyMagic starts every NumPy .npy file.
const npyMagic = "\x93NUMPY"

// IsNPY reports whether data is a NumPy .npy file, as CLIP_benchmark's
// multi-label WebDataset shards store a sample's multi-hot label (member
// "npy").
func IsNPY(data []byte) bool { return bytes.HasPrefix(data, []byte(npyMagic)) }

var (
	npyDescr = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	npyOrder = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	npyShape = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// DecodeNPYVector reads a .npy file (format version 1–3) holding one vector:
// shape (n,), or (1, n) / (n, 1), of booleans, integers or floats of any
// width, little-endian or single-byte. Values come back as float64.
func DecodeNPYVector(data []byte) ([]float64, error) {
	if !IsNPY(data) || len(data) < 10 {
		return nil, fmt.Errorf("npy: not a .npy file")
	}
	var headerLen, start int
	switch data[6] {
	case 1:
		headerLen, start = int(binary.LittleEndian.Uint16(data[8:10])), 10
	case 2, 3:
		if len(data) < 12 {
			return nil, fmt.Errorf("npy: truncated header")
		}
		headerLen, start = int(binary.LittleEndian.Uint32(data[8:12])), 12
	default:
		return nil, fmt.Errorf("npy: format version %d.%d not supported", data[6], data[7])
	}
	if start+headerLen > len(data) {
		return nil, fmt.Errorf("npy: header of %d bytes runs past the file's %d", headerLen, len(data))
	}
	header, body := string(data[start:start+headerLen]), data[start+headerLen:]
	descr := npyDescr.FindStringSubmatch(header)
	shape := npyShape.FindStringSubmatch(header)
	if descr == nil || shape == nil {
		return nil, fmt.Errorf("npy: header %q lacks descr or shape", strings.TrimSpace(header))
	}
	if o := npyOrder.FindStringSubmatch(header); o != nil && o[1] == "True" && strings.Count(shape[1], ",") > 1 {
		return nil, fmt.Errorf("npy: Fortran-ordered matrices are not supported")
	}
	n := 1
	dims := 0
	for _, d := range strings.Split(shape[1], ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		v, err := strconv.Atoi(d)
		if err != nil {
			return nil, fmt.Errorf("npy: shape (%s)", shape[1])
		}
		if v != 1 {
			dims++
		}
		n *= v
	}
	if dims > 1 {
		return nil, fmt.Errorf("npy: shape (%s) is not a vector", shape[1])
	}
	d := descr[1]
	if len(d) < 3 || (d[0] == '>' && d[2] != '1') {
		return nil, fmt.Errorf("npy: dtype %q not supported (want little-endian bool, int, uint or float)", d)
	}
	kind := d[1]
	size, err := strconv.Atoi(d[2:])
	if err != nil || (size != 1 && size != 2 && size != 4 && size != 8) {
		return nil, fmt.Errorf("npy: dtype %q not supported", d)
	}
	if len(body) != n*size {
		return nil, fmt.Errorf("npy: %d data bytes for %d values of %d bytes", len(body), n, size)
	}
	out := make([]float64, n)
	for i := range out {
		b := body[i*size : (i+1)*size]
		var u uint64
		for j := size - 1; j >= 0; j-- {
			u = u<<8 | uint64(b[j])
		}
		switch {
		case kind == 'b' && size == 1, kind == 'u':
			out[i] = float64(u)
		case kind == 'i':
			shift := 64 - 8*size
			out[i] = float64(int64(u<<shift) >> shift)
		case kind == 'f' && size == 4:
			out[i] = float64(math.Float32frombits(uint32(u)))
		case kind == 'f' && size == 8:
			out[i] = math.Float64frombits(u)
		default:
			return nil, fmt.Errorf("npy: dtype %q not supported", d)
		}
	}
	return out, nil
}
