package synth

import (
	"fmt"
	"math/rand/v2"
)

// Modality is the imaging modality or stain of a sample. It sets the
// background, colours and texture of the whole image.
type Modality uint8

// The modalities.
const (
	XRay         Modality = iota // grayscale chest radiograph: dark thorax, bright opacities
	Histology                    // H&E stained section: pink eosin background, purple nuclei
	Fluorescence                 // fluorescence micrograph: black background, glowing cells
	NumModalities
)

// Shape is the shape of the main objects of a sample.
type Shape uint8

// The shapes.
const (
	Round     Shape = iota // discs with a slight wobble
	Elongated              // rods/ellipses about three times longer than wide
	Irregular              // spiky star-like outlines (spiculated)
	NumShapes
)

// Position is the image quadrant that holds the cluster of objects.
type Position uint8

// The positions.
const (
	UpperLeft Position = iota
	UpperRight
	LowerLeft
	LowerRight
	NumPositions
)

// Color is the fluorophore colour of fluorescence samples; NoColor for the
// other modalities.
type Color uint8

// The colours.
const (
	NoColor Color = iota
	Green
	Red
	Blue
	NumColors
)

// MaxCount is the largest object count; counts run from 1 to MaxCount.
const MaxCount = 3

var (
	modalityNames = []string{"xray", "histology", "fluorescence"}
	shapeNames    = []string{"round", "elongated", "irregular"}
	positionNames = []string{"upper left", "upper right", "lower left", "lower right"}
	colorNames    = []string{"", "green", "red", "blue"}
)

// String returns the attribute value as written in KEY.json.
func (m Modality) String() string { return enumName(modalityNames, int(m)) }

// String returns the attribute value as written in KEY.json.
func (s Shape) String() string { return enumName(shapeNames, int(s)) }

// String returns the attribute value as written in KEY.json.
func (p Position) String() string { return enumName(positionNames, int(p)) }

// String returns the attribute value as written in KEY.json ("" for NoColor).
func (c Color) String() string { return enumName(colorNames, int(c)) }

// Right reports whether the position is in the right half of the image.
func (p Position) Right() bool { return p == UpperRight || p == LowerRight }

// Lower reports whether the position is in the lower half of the image.
func (p Position) Lower() bool { return p == LowerLeft || p == LowerRight }

// MarshalText implements encoding.TextMarshaler.
func (m Modality) MarshalText() ([]byte, error) {
	return marshalEnum(modalityNames, int(m), "modality")
}

// MarshalText implements encoding.TextMarshaler.
func (s Shape) MarshalText() ([]byte, error) { return marshalEnum(shapeNames, int(s), "shape") }

// MarshalText implements encoding.TextMarshaler.
func (p Position) MarshalText() ([]byte, error) {
	return marshalEnum(positionNames, int(p), "position")
}

// MarshalText implements encoding.TextMarshaler.
func (c Color) MarshalText() ([]byte, error) { return marshalEnum(colorNames, int(c), "color") }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Modality) UnmarshalText(b []byte) error {
	i, err := parseEnum(modalityNames, string(b), "modality")
	*m = Modality(i)
	return err
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Shape) UnmarshalText(b []byte) error {
	i, err := parseEnum(shapeNames, string(b), "shape")
	*s = Shape(i)
	return err
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Position) UnmarshalText(b []byte) error {
	i, err := parseEnum(positionNames, string(b), "position")
	*p = Position(i)
	return err
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Color) UnmarshalText(b []byte) error {
	i, err := parseEnum(colorNames, string(b), "color")
	*c = Color(i)
	return err
}

func enumName(names []string, i int) string {
	if i < 0 || i >= len(names) {
		return fmt.Sprintf("invalid(%d)", i)
	}
	return names[i]
}

func marshalEnum(names []string, i int, what string) ([]byte, error) {
	if i < 0 || i >= len(names) {
		return nil, fmt.Errorf("synth: invalid %s %d", what, i)
	}
	return []byte(names[i]), nil
}

func parseEnum(names []string, s, what string) (int, error) {
	for i, n := range names {
		if n == s {
			return i, nil
		}
	}
	return 0, fmt.Errorf("synth: unknown %s %q (want one of %q)", what, s, names)
}

// Attributes are the visible properties of one sample; KEY.json holds them,
// e.g. {"modality":"fluorescence","shape":"round","count":2,"position":"upper left","color":"green"}.
type Attributes struct {
	Modality Modality `json:"modality"`
	Shape    Shape    `json:"shape"`
	Count    int      `json:"count"` // number of objects, 1..MaxCount
	Position Position `json:"position"`
	Color    Color    `json:"color,omitempty"` // set for Fluorescence only
}

// Validate reports the first attribute out of range.
func (a Attributes) Validate() error {
	switch {
	case a.Modality >= NumModalities:
		return fmt.Errorf("synth: Attributes.Modality %d out of range", a.Modality)
	case a.Shape >= NumShapes:
		return fmt.Errorf("synth: Attributes.Shape %d out of range", a.Shape)
	case a.Count < 1 || a.Count > MaxCount:
		return fmt.Errorf("synth: Attributes.Count %d out of range 1..%d", a.Count, MaxCount)
	case a.Position >= NumPositions:
		return fmt.Errorf("synth: Attributes.Position %d out of range", a.Position)
	case a.Color >= NumColors:
		return fmt.Errorf("synth: Attributes.Color %d out of range", a.Color)
	case (a.Modality == Fluorescence) != (a.Color != NoColor):
		return fmt.Errorf("synth: Attributes.Color %q: fluorescence samples need a colour, others none", a.Color)
	}
	return nil
}

// RandomAttributes draws every attribute uniformly (and a colour for
// fluorescence samples).
func RandomAttributes(rng *rand.Rand) Attributes {
	a := Attributes{
		Modality: Modality(rng.IntN(int(NumModalities))),
		Shape:    Shape(rng.IntN(int(NumShapes))),
		Count:    1 + rng.IntN(MaxCount),
		Position: Position(rng.IntN(int(NumPositions))),
	}
	if a.Modality == Fluorescence {
		a.Color = Color(1 + rng.IntN(int(NumColors)-1))
	}
	return a
}
