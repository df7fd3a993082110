package weights

// DType is a tensor element type, spelled as in safetensors headers.
type DType string

// Element types this package reads and writes.
const (
	F32  DType = "F32"  // IEEE 754 binary32
	F16  DType = "F16"  // IEEE 754 binary16
	BF16 DType = "BF16" // bfloat16: the top 16 bits of a binary32
	F64  DType = "F64"  // IEEE 754 binary64
	I64  DType = "I64"
	I32  DType = "I32"
	U8   DType = "U8"
	I8   DType = "I8"
	BOOL DType = "BOOL" // one byte per element, 0 or 1
)

// dtypes lists the supported element types, for error messages.
var dtypes = []DType{F32, F16, BF16, F64, I64, I32, U8, I8, BOOL}

// Size returns the number of bytes per element, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16:
		return 2
	case U8, I8, BOOL:
		return 1
	}
	return 0
}

// isFloat reports whether d is one of the floating-point dtypes.
func (d DType) isFloat() bool {
	return d == F32 || d == F16 || d == BF16 || d == F64
}
