//go:build !(libjpeg && cgo)

package preprocess

import "errors"

// TurboAvailable reports whether this binary can decode JPEGs with
// libjpeg-turbo (Config.JPEG = JPEGTurbo): only when built with
// -tags libjpeg and cgo enabled.
func TurboAvailable() bool { return false }

// errTurboUnsupported says libjpeg-turbo decodes the file but not into a
// mode the transform takes (CMYK, YCCK): the standard decoder handles those.
var errTurboUnsupported = errors.New("libjpeg-turbo: unsupported colour space")

func turboDecode([]byte, int) (rowSource, error) {
	return nil, errors.New("built without libjpeg-turbo (build with -tags libjpeg)")
}
