//go:build libjpeg && cgo

package preprocess

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

// A decoder handle: libjpeg's state, its error manager and a C copy of
// the compressed data (libjpeg reads it across calls, and cgo forbids C
// from keeping Go memory).
typedef struct {
	struct jpeg_decompress_struct cinfo;
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
	int hit_eof;
	unsigned char *data;
	int started;
} bmca_jpeg;

static void bmca_error_exit(j_common_ptr cinfo) {
	bmca_jpeg *h = (bmca_jpeg *)cinfo->client_data;
	(*cinfo->err->format_message)(cinfo, h->msg);
	longjmp(h->jb, 1);
}

// Warnings are not errors for Pillow either, except the end of the data:
// Pillow refuses truncated files, and so does the pure-Go decoder.
static void bmca_emit_message(j_common_ptr cinfo, int level) {
	bmca_jpeg *h = (bmca_jpeg *)cinfo->client_data;
	if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
		h->hit_eof = 1;
}

static void bmca_close(bmca_jpeg *h) {
	if (h == NULL) return;
	jpeg_destroy_decompress(&h->cinfo);
	free(h->data);
	free(h);
}

// bmca_open reads the header and starts decompression at 1/denom scale,
// as Pillow configures libjpeg (JDCT_ISLOW, fancy upsampling), with RGB
// output for colour images and greyscale kept as one channel. It returns
// NULL and fills msg on failure; unsupported colour spaces (CMYK, YCCK)
// return NULL with msg starting "unsupported".
static bmca_jpeg *bmca_open(const unsigned char *data, unsigned long size, int denom,
                            int *w, int *h_out, int *comps, char *msg) {
	bmca_jpeg *h = calloc(1, sizeof(bmca_jpeg));
	if (h == NULL) { strcpy(msg, "out of memory"); return NULL; }
	h->data = malloc(size);
	if (h->data == NULL) { free(h); strcpy(msg, "out of memory"); return NULL; }
	memcpy(h->data, data, size);
	h->cinfo.err = jpeg_std_error(&h->pub);
	h->pub.error_exit = bmca_error_exit;
	h->pub.emit_message = bmca_emit_message;
	h->cinfo.client_data = h;
	if (setjmp(h->jb)) {
		strncpy(msg, h->msg, JMSG_LENGTH_MAX - 1);
		bmca_close(h);
		return NULL;
	}
	jpeg_create_decompress(&h->cinfo);
	jpeg_mem_src(&h->cinfo, h->data, size);
	jpeg_read_header(&h->cinfo, TRUE);
	switch (h->cinfo.jpeg_color_space) {
	case JCS_GRAYSCALE:
		h->cinfo.out_color_space = JCS_GRAYSCALE;
		break;
	case JCS_YCbCr:
	case JCS_RGB:
		h->cinfo.out_color_space = JCS_RGB;
		break;
	default:
		strcpy(msg, "unsupported colour space");
		bmca_close(h);
		return NULL;
	}
	h->cinfo.scale_num = 1;
	h->cinfo.scale_denom = denom;
	h->cinfo.dct_method = JDCT_ISLOW;
	h->cinfo.do_fancy_upsampling = TRUE;
	jpeg_start_decompress(&h->cinfo);
	h->started = 1;
	*w = h->cinfo.output_width;
	*h_out = h->cinfo.output_height;
	*comps = h->cinfo.output_components;
	return h;
}

// bmca_read decodes up to n rows into out (row stride = width*comps) and
// returns how many it decoded, or -1 with msg filled.
static int bmca_read(bmca_jpeg *h, unsigned char *out, int n, char *msg) {
	if (setjmp(h->jb)) {
		strncpy(msg, h->msg, JMSG_LENGTH_MAX - 1);
		return -1;
	}
	int stride = h->cinfo.output_width * h->cinfo.output_components;
	int got = 0;
	while (got < n && h->cinfo.output_scanline < h->cinfo.output_height) {
		JSAMPROW row = out + (size_t)got * stride;
		got += jpeg_read_scanlines(&h->cinfo, &row, 1);
	}
	if (h->hit_eof) {
		strcpy(msg, "premature end of JPEG file");
		return -1;
	}
	return got;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// TurboAvailable reports whether this binary can decode JPEGs with
// libjpeg-turbo (Config.JPEG = JPEGTurbo): it was built with -tags libjpeg
// and cgo.
func TurboAvailable() bool { return true }

// turboSource streams rows decoded by libjpeg-turbo, a few at a time.
type turboSource struct {
	h     *C.bmca_jpeg
	w, ht int
	comps int
}

// turboDecode opens a JPEG with libjpeg-turbo at 1/scale size. The handle is
// released when its rows have been read (readRows is called once).
func turboDecode(data []byte, scale int) (rowSource, error) {
	if len(data) == 0 {
		return nil, errors.New("empty data")
	}
	var w, h, comps C.int
	msg := (*C.char)(C.calloc(C.JMSG_LENGTH_MAX, 1))
	defer C.free(unsafe.Pointer(msg))
	handle := C.bmca_open((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), C.int(scale), &w, &h, &comps, msg)
	if handle == nil {
		if m := C.GoString(msg); m != "unsupported colour space" {
			return nil, errors.New(m)
		}
		return nil, errTurboUnsupported
	}
	return &turboSource{h: handle, w: int(w), ht: int(h), comps: int(comps)}, nil
}

func (s *turboSource) info() (mode, int, int, [][3]uint8) {
	if s.comps == 1 {
		return modeL, s.w, s.ht, nil
	}
	return modeRGB, s.w, s.ht, nil
}

func (s *turboSource) readRows(from, to, x0, x1 int, fn func(y int, row []uint8)) error {
	defer func() {
		C.bmca_close(s.h)
		s.h = nil
	}()
	if s.h == nil {
		return errors.New("libjpeg-turbo: rows read twice")
	}
	const batch = 16
	stride := s.w * s.comps
	buf := make([]uint8, batch*stride)
	msg := (*C.char)(C.calloc(C.JMSG_LENGTH_MAX, 1))
	defer C.free(unsafe.Pointer(msg))
	for y := 0; y < to; {
		n := C.bmca_read(s.h, (*C.uchar)(unsafe.Pointer(&buf[0])), C.int(min(batch, to-y)), msg)
		if n < 0 {
			return fmt.Errorf("jpeg (libjpeg-turbo): row %d: %s", y, C.GoString(msg))
		}
		if n == 0 {
			return fmt.Errorf("jpeg (libjpeg-turbo): no data after row %d", y)
		}
		for i := range int(n) {
			if y+i >= from {
				fn(y+i, buf[i*stride+x0*s.comps:i*stride+x1*s.comps])
			}
		}
		y += int(n)
	}
	return nil
}

// errTurboUnsupported says libjpeg-turbo decodes the file but not into a
// mode the transform takes (CMYK, YCCK): the standard decoder handles those.
var errTurboUnsupported = errors.New("libjpeg-turbo: unsupported colour space")
