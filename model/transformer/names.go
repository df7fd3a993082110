package transformer

import (
	"strings"

	"github.com/gomlx/compute/dtypes"
)

var x32 = dtypes.Float32

// OpenCLIPName turns a GoMLX scope and variable name into the OpenCLIP
// state-dict name: "/visual/conv1" + "weight" → "visual.conv1.weight".
func OpenCLIPName(scope, name string) string {
	s := strings.Trim(scope, "/")
	if s == "" {
		return name
	}
	return strings.ReplaceAll(s, "/", ".") + "." + name
}

// VariablePath turns an OpenCLIP state-dict name into a GoMLX variable path.
func VariablePath(name string) string {
	return "/" + strings.ReplaceAll(name, ".", "/")
}
