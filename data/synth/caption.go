package synth

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// MaxCaptionBytes bounds the length of every caption (and every zero-shot
// prompt): the demo's byte-level tokenizer has a context of 64 ids, two of
// which are SOT and EOT.
const MaxCaptionBytes = 60

// noun is a count noun in its singular and plural form.
type noun struct{ one, many string }

// Caption vocabulary. Every caption names all four attributes (and the colour
// of fluorescence samples), with a synonym drawn for each.
var (
	// heads names the modality at the start of a sentence.
	heads = [NumModalities][]string{
		XRay:         {"Chest X-ray", "Chest radiograph", "Radiograph", "X-ray", "Frontal chest film"},
		Histology:    {"H&E section", "H&E stained section", "H&E histology", "Histology (H&E)", "H&E stained tissue"},
		Fluorescence: {"Fluorescence image", "Fluorescence micrograph", "Immunofluorescence", "IF image"},
	}
	// objects names the modality with its article, inside a sentence.
	objects = [NumModalities][]string{
		XRay:         {"a chest X-ray", "a chest radiograph", "a radiograph"},
		Histology:    {"an H&E section", "an H&E stained slide", "an H&E slide"},
		Fluorescence: {"a fluorescence image", "a fluorescence micrograph"},
	}
	// adjectives names the modality before "image".
	adjectives = [NumModalities]string{XRay: "X-ray", Histology: "H&E", Fluorescence: "fluorescence"}
	nouns      = [NumModalities][]noun{
		XRay:         {{"opacity", "opacities"}, {"nodule", "nodules"}, {"lesion", "lesions"}, {"object", "objects"}},
		Histology:    {{"nucleus", "nuclei"}, {"cell", "cells"}, {"object", "objects"}},
		Fluorescence: {{"cell", "cells"}, {"nucleus", "nuclei"}, {"object", "objects"}},
	}
	shapeWords = [NumShapes][]string{
		Round:     {"round", "circular", "rounded"},
		Elongated: {"elongated", "rod-shaped", "oblong"},
		Irregular: {"irregular", "spiculated", "star-shaped", "spiky", "jagged"},
	}
	countWords = [MaxCount + 1][]string{
		1: {"one", "a single", "1"},
		2: {"two", "a pair of", "2"},
		3: {"three", "3"},
	}
	verticalWords   = [2][]string{{"upper", "top"}, {"lower", "bottom"}}
	horizontalWords = [2]string{"left", "right"}
	colorWords      = [NumColors]string{Green: "green", Red: "red", Blue: "blue"}

	// captionTemplates: {H} head, {A} modality with article, {M} modality
	// adjective, {N}/{n} noun phrase (count, shape, colour, noun) capitalised or
	// not, {P}/{p} position capitalised or not, {Q} position with an optional
	// " quadrant". {O} is the noun phrase with the generic noun "objects".
	captionTemplates = []string{
		"{H} showing {n} in the {Q}.",
		"{H}: {n}, {p}.",
		"{H}. {N}, {p}.",
		"{H} with {n}, {p}.",
		"{H} shows {n} at {p}.",
		"{N} in the {Q} ({M}).",
		"{N} at {p}, {A}.",
		"{P}: {n} on {A}.",
		"Synthetic {M} image: {O}, {p}.",
		"{M^} image, {O} in the {Q}.",
	}
)

// Caption writes a short English caption of attrs, e.g. "H&E stained section
// showing two round nuclei in the upper left." Templates and synonyms are
// drawn from rng; every caption names the modality, shape, count and position
// (and colour for fluorescence) and is ASCII of at most MaxCaptionBytes bytes.
// Caption panics if attrs is invalid.
func Caption(rng *rand.Rand, attrs Attributes) string {
	if err := attrs.Validate(); err != nil {
		panic(err)
	}
	// Draw a template, then up to 4 fillings of it, so that the length limit
	// mostly biases the synonyms rather than the sentence structure.
	const templates, fillings = 6, 4
	for range templates {
		tmpl := captionTemplates[rng.IntN(len(captionTemplates))]
		for range fillings {
			if c := fillTemplate(rng, attrs, tmpl); len(c) <= MaxCaptionBytes {
				return c
			}
		}
	}
	return compactCaption(attrs)
}

// compactCaption is the shortest caption form, e.g. "Fluorescence: 3
// elongated green objects, upper right."; it fits MaxCaptionBytes for every
// attribute combination (checked by a test).
func compactCaption(a Attributes) string {
	parts := []string{capitalise(adjectives[a.Modality]) + ":", strconv.Itoa(a.Count), a.Shape.String()}
	if a.Color != NoColor {
		parts = append(parts, a.Color.String())
	}
	if a.Count == 1 {
		parts = append(parts, "object,")
	} else {
		parts = append(parts, "objects,")
	}
	return strings.Join(parts, " ") + " " + a.Position.String() + "."
}

// fillTemplate substitutes the placeholders of captionTemplates.
func fillTemplate(rng *rand.Rand, a Attributes, tmpl string) string {
	pick := func(words []string) string { return words[rng.IntN(len(words))] }
	// The plain shape word ("round", "elongated", "irregular") is the one the
	// zero-shot prompts use; it is drawn half the time, so a tiny byte-level
	// text tower sees it often enough to tie it to the image, while the
	// synonyms keep the captions varied.
	pickShape := func(words []string) string {
		if rng.IntN(2) == 0 {
			return words[0]
		}
		return pick(words)
	}
	nounPhrase := func(n noun) string {
		parts := []string{pick(countWords[a.Count]), pickShape(shapeWords[a.Shape])}
		if a.Color != NoColor {
			parts = append(parts, colorWords[a.Color])
		}
		if a.Count == 1 {
			parts = append(parts, n.one)
		} else {
			parts = append(parts, n.many)
		}
		return strings.Join(parts, " ")
	}
	pos := pick(verticalWords[b2i(a.Position.Lower())]) + " " + horizontalWords[b2i(a.Position.Right())]
	var b strings.Builder
	for len(tmpl) > 0 {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		j := strings.IndexByte(tmpl[i:], '}') + i
		b.WriteString(tmpl[:i])
		switch key := tmpl[i+1 : j]; key {
		case "H":
			b.WriteString(pick(heads[a.Modality]))
		case "A":
			b.WriteString(pick(objects[a.Modality]))
		case "M":
			b.WriteString(adjectives[a.Modality])
		case "M^":
			b.WriteString(capitalise(adjectives[a.Modality]))
		case "n":
			b.WriteString(nounPhrase(pickNoun(rng, nouns[a.Modality])))
		case "N":
			b.WriteString(capitalise(nounPhrase(pickNoun(rng, nouns[a.Modality]))))
		case "O":
			b.WriteString(nounPhrase(noun{"object", "objects"}))
		case "p":
			b.WriteString(pos)
		case "P":
			b.WriteString(capitalise(pos))
		case "Q":
			b.WriteString(pos)
			if rng.IntN(4) == 0 {
				b.WriteString(" quadrant")
			}
		default:
			panic("synth: unknown caption placeholder " + key)
		}
		tmpl = tmpl[j+1:]
	}
	return b.String()
}

func pickNoun(rng *rand.Rand, ns []noun) noun { return ns[rng.IntN(len(ns))] }

func capitalise(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
