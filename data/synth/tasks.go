package synth

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Task kinds.
const (
	// KindZeroShot tasks classify held-out images by comparing them with the
	// text embeddings of ClassNames inserted into Templates, as OpenCLIP's
	// zero-shot classifier does. Their shards carry KEY.cls.
	KindZeroShot = "zeroshot_classification"
	// KindRetrieval tasks rank held-out image–caption pairs (KEY.png with
	// KEY.txt) in both directions.
	KindRetrieval = "retrieval"
)

// Placeholder is the slot for the class name in a prompt template.
const Placeholder = "{}"

// Prompt puts className into template at Placeholder.
func Prompt(template, className string) string {
	return strings.Replace(template, Placeholder, className, 1)
}

// zeroShotSpec defines one zero-shot task over one attribute.
type zeroShotSpec struct {
	name       string // task name and attribute key in KEY.json
	classNames []string
	templates  []string
}

// values returns the KEY.json value of the task's attribute for each class.
func (z zeroShotSpec) values() []string {
	switch z.name {
	case "modality":
		return slices.Clone(modalityNames)
	case "shape":
		return slices.Clone(shapeNames)
	case "count":
		v := make([]string, MaxCount)
		for i := range v {
			v[i] = strconv.Itoa(i + 1)
		}
		return v
	default:
		return slices.Clone(positionNames)
	}
}

// withClass draws attributes uniformly, except that the task's attribute is class.
func (z zeroShotSpec) withClass(rng *rand.Rand, class int) Attributes {
	a := RandomAttributes(rng)
	switch z.name {
	case "modality":
		a.Modality = Modality(class)
		a.Color = NoColor
		if a.Modality == Fluorescence {
			a.Color = Color(1 + rng.IntN(int(NumColors)-1))
		}
	case "shape":
		a.Shape = Shape(class)
	case "count":
		a.Count = class + 1
	default:
		a.Position = Position(class)
	}
	return a
}

// objectTemplates prompt for a property of the objects; their wording follows
// the captions ("objects" is the generic noun the captions also use).
var objectTemplates = []string{"{}.", "an image with {}.", "a synthetic image of {}."}

// zeroShotSpecs lists the zero-shot tasks in manifest order; class i of each
// is attribute value i (count: i+1).
var zeroShotSpecs = []zeroShotSpec{
	{
		name:       "modality",
		classNames: []string{"a chest X-ray", "an H&E stained section", "a fluorescence micrograph"},
		templates:  []string{"{}.", "a synthetic image of {}.", "an image of {}."},
	},
	{
		name:       "shape",
		classNames: []string{"round objects", "elongated objects", "irregular objects"},
		templates:  objectTemplates,
	},
	{
		name:       "count",
		classNames: []string{"one object", "two objects", "three objects"},
		templates:  objectTemplates,
	},
	{
		name: "position",
		classNames: []string{"objects in the upper left", "objects in the upper right",
			"objects in the lower left", "objects in the lower right"},
		templates: objectTemplates,
	},
}

// retrievalTaskName names the image–caption retrieval task.
const retrievalTaskName = "retrieval"

// evalShardName returns the path, relative to the dataset dir, of shard i of a task.
func evalShardName(task string, i int) string {
	return fmt.Sprintf("eval/%s-%06d.tar", task, i)
}
