package tasks

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// This file is the schema of a suite's data recipes: where each data set
// comes from and how it becomes the layout its tasks read. eval/prepare
// carries them out (cmd/eval prepare); evaluation itself never reads them.

// Access says how a data set's files are obtained.
type Access string

// The ways a recipe's files are obtained.
const (
	// Open files are downloaded from their URLs.
	Open Access = "open"
	// Registration files sit behind a sign-up, a licence form or a
	// competition's rules (Kaggle, CAMMA, Stanford AIMI, IEEE DataPort): the
	// user downloads them and puts them where the recipe says; prepare then
	// verifies and converts them as for open files.
	Registration Access = "registration"
	// Manual files need no sign-up but cannot be fetched over plain HTTP (a
	// torrent, a page that builds links in the browser); handled like
	// Registration.
	Manual Access = "manual"
)

// Accesses lists every Access.
var Accesses = []Access{Open, Registration, Manual}

// Dataset is the recipe of one data set: its files, how to check them, and
// the steps that turn them into the layout its tasks read. Paths in steps
// and expectations are relative to the suite's data root; "{downloads}"
// stands for this data set's download folder (by default
// <data root>/downloads/<name>).
type Dataset struct {
	// Name identifies the recipe (`cmd/eval prepare NAME`) and names its
	// download folder; required, unique.
	Name string `yaml:"name"`
	// Tasks are the suite's tasks this data set serves; required.
	Tasks []string `yaml:"tasks"`
	// Source is the publisher's page or paper; License the licence as the
	// publisher states it. Documentation, printed by prepare.
	Source  string `yaml:"source"`
	License string `yaml:"license"`
	// Access is "open" (default), "registration" or "manual".
	Access Access `yaml:"access"`
	// Instructions tell a user of a registration or manual data set where to
	// get the files (printed with where to put them).
	Instructions string `yaml:"instructions"`
	// Files are what is downloaded (or placed by hand), checked before any
	// step runs.
	Files []DataFile `yaml:"files"`
	// Steps run in order once every file is present and verified.
	Steps []Step `yaml:"steps"`
	// Expect lists checks of the prepared layout, e.g. the image counts the
	// publisher gives; a failed check fails the recipe.
	Expect []Expectation `yaml:"expect"`
	// Verified says what of this recipe was checked against the publisher's
	// own description; Assumed what was not (documentation only).
	Verified string `yaml:"verified"`
	Assumed  string `yaml:"assumed"`
}

// DataFile is one file to download or to be placed by hand.
type DataFile struct {
	// URL is where the file is downloaded from (open data sets; for others
	// optional, printed as the place to get it). Hugging Face URLs get
	// $HF_TOKEN as a bearer token when it is set; no other host sees it.
	URL string `yaml:"url"`
	// Path is where the file is stored, relative to the data root
	// ("{downloads}/…" to keep it with the downloads); default
	// "{downloads}/<last element of URL>". For registration and manual
	// data sets it may name a folder the user fills by hand.
	Path string `yaml:"path"`
	// SHA256 and MD5 are the publisher's checksums (hex), when it gives
	// them; a file that does not match is not accepted.
	SHA256 string `yaml:"sha256"`
	MD5    string `yaml:"md5"`
	// Size is the expected size in bytes, when known (checked too).
	Size int64 `yaml:"size"`
}

// Expectation is a check of the prepared layout.
type Expectation struct {
	// Glob matches files relative to the data root ("**" crosses folders).
	Glob string `yaml:"glob"`
	// Count, when > 0, is how many files must match; otherwise at least one.
	Count int `yaml:"count"`
	// Rows, when > 0, is how many data rows the matched table must have
	// (CSV/TSV with a header; Glob must match one file).
	Rows int `yaml:"rows"`
}

// Step is one preparation step; exactly one field is set.
type Step struct {
	Unpack      *UnpackStep      `yaml:"unpack"`
	FolderTable *FolderTableStep `yaml:"folder_table"`
	Table       *TableStep       `yaml:"table"`
	Crops       *CropsStep       `yaml:"crops"`
	VideoFrames *VideoFramesStep `yaml:"video_frames"`
	NPZ         *NPZStep         `yaml:"npz_to_parquet"`
	FetchListed *FetchListedStep `yaml:"fetch_listed"`
	PMCFigures  *PMCFiguresStep  `yaml:"pmc_figures"`
}

// Kind is the step's YAML key, "" when none or several are set.
func (s Step) Kind() string {
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{{"unpack", s.Unpack != nil}, {"folder_table", s.FolderTable != nil}, {"table", s.Table != nil},
		{"crops", s.Crops != nil}, {"video_frames", s.VideoFrames != nil}, {"npz_to_parquet", s.NPZ != nil},
		{"fetch_listed", s.FetchListed != nil}, {"pmc_figures", s.PMCFigures != nil}} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// StepKinds lists the step keys.
var StepKinds = []string{"unpack", "folder_table", "table", "crops", "video_frames", "npz_to_parquet", "fetch_listed", "pmc_figures"}

// UnpackStep extracts a zip, tar, tar.gz or tgz archive.
type UnpackStep struct {
	// Archive is the file to extract.
	Archive string `yaml:"archive"`
	// To is the folder it is extracted into.
	To string `yaml:"to"`
	// Strip drops this many leading path elements of every member.
	Strip int `yaml:"strip"`
	// Include, when set, extracts only members matching one of these
	// globs (on the member path before Strip; "**" crosses folders).
	Include []string `yaml:"include"`
	// From re-roots the archive at the first folder with this name, at
	// whatever depth the publisher nested it: only members under it are
	// extracted, relative to it (for archives whose top folders vary
	// between releases). Applied before Strip.
	From string `yaml:"from"`
	// Flatten puts every extracted file directly in To, by its base name
	// (publishers that split one image folder into several archives).
	Flatten bool `yaml:"flatten"`
}

// Convert names an image conversion: "" keeps the file as it is; "png"
// decodes it (DICOM, TIFF including 16-bit, BMP, JPEG, PNG) and writes an
// 8-bit PNG.
type Convert string

// The conversions a step may ask for.
const (
	NoConvert  Convert = ""
	ConvertPNG Convert = "png"
)

// FolderTableStep writes a path,label table of the images under a folder
// whose sub-folders are the classes.
type FolderTableStep struct {
	// Root holds one folder per class. With Labels, a Root that does not
	// itself hold the labelled folders is searched for the first folder
	// below it that holds them all.
	Root string `yaml:"root"`
	// Out is the table written (CSV; paths relative to its folder).
	Out string `yaml:"out"`
	// Files selects the images by base name (glob; default: the image
	// extensions eval/formats reads).
	Files string `yaml:"files"`
	// Labels maps class folder names to labels; when set, every class
	// folder must be listed (folders mapped to "" are skipped).
	Labels map[string]string `yaml:"labels"`
	// Convert and Images: convert each image into the folder Images
	// (required with a conversion), keeping the relative path.
	Convert Convert `yaml:"convert"`
	Images  string  `yaml:"images"`
}

// TableStep writes a path,label table from a publisher's table.
type TableStep struct {
	// In is the publisher's table (CSV; TSV when it ends in .tsv or .tab).
	In string `yaml:"in"`
	// Out is the table written (CSV).
	Out string `yaml:"out"`
	// Path builds each image's path relative to In's folder from the
	// row's cells: "{column}" stands for a cell, e.g.
	// "stage_2_train_images/{patientId}.dcm".
	Path string `yaml:"path"`
	// Label is the column holding the label; "a|b" takes the first
	// non-empty of columns a and b (DeepDRiD gives each eye's grade in
	// its own column).
	Label string `yaml:"label"`
	// OutLabel names the label column of Out (default "label").
	OutLabel string `yaml:"out_label"`
	// Dedupe keeps one row per image (a publisher listing several boxes
	// per image); rows of one image with different labels are an error.
	Dedupe bool `yaml:"dedupe"`
	// Holdout, when set, keeps only a seeded share of the images.
	Holdout *Holdout `yaml:"holdout"`
	// Convert and Images: as in FolderTableStep.
	Convert Convert `yaml:"convert"`
	Images  string  `yaml:"images"`
}

// Holdout selects a reproducible share of a table's images: those whose
// SHA-256 of Seed + "/" + the image's key falls in the first Fraction of the
// hash space, so every user gets the same subset without a shipped list.
type Holdout struct {
	// Fraction of the images kept, in (0, 1].
	Fraction float64 `yaml:"fraction"`
	// Seed names the split (changing it draws another subset).
	Seed string `yaml:"seed"`
	// Key is the column identifying an example (default: the image path).
	Key string `yaml:"key"`
}

// CropsStep cuts one image per annotated box and writes a path,label table.
type CropsStep struct {
	// Annotations is the box file; Format is "bbbc041" (the Broad
	// Bioimage Benchmark Collection's JSON list of images with objects and
	// bounding_box minimum/maximum r,c) or "coco" (COCO detection JSON,
	// bbox = x, y, width, height).
	Annotations string `yaml:"annotations"`
	Format      string `yaml:"format"`
	// Images is the folder the annotation's image paths are relative to.
	Images string `yaml:"images"`
	// Out is the table written; Crops the folder the PNG crops go to.
	Out   string `yaml:"out"`
	Crops string `yaml:"crops"`
}

// VideoFramesStep extracts frames from surgical videos with ffmpeg and writes
// tables of frames labelled from per-video annotation files (Cholec80's
// layout: videoNN-phase.txt with a phase per frame, videoNN-tool.txt with
// tool presence every Nth frame).
type VideoFramesStep struct {
	// IDs lists the video numbers, e.g. "41-80".
	IDs string `yaml:"ids"`
	// Video, Phase and Tools are path templates with "{id}" for the video
	// number written with two digits (Phase or Tools may be empty).
	Video string `yaml:"video"`
	Phase string `yaml:"phase"`
	Tools string `yaml:"tools"`
	// Every keeps one frame in Every (25 = 1 fps for 25 fps video, the
	// rate of Cholec80's tool annotation).
	Every int `yaml:"every"`
	// Frames is the folder the JPEG frames go to.
	Frames string `yaml:"frames"`
	// PhaseOut and ToolsOut are the tables written: every kept frame with
	// its phase; the kept frames showing exactly one tool, with its name.
	PhaseOut string `yaml:"phase_out"`
	ToolsOut string `yaml:"tools_out"`
}

// NPZStep writes one split of a MedMNIST-style .npz (uint8 image arrays and
// integer labels) as a parquet file of PNG images and labels.
type NPZStep struct {
	// NPZ is the archive; Split the prefix of its arrays ("test" reads
	// test_images and test_labels).
	NPZ   string `yaml:"npz"`
	Split string `yaml:"split"`
	// Out is the parquet file written (columns image {bytes, path}, label).
	Out string `yaml:"out"`
}

// FetchListedStep downloads one image per row of a table that lists URLs,
// and writes the rows whose image arrived (Fitzpatrick17k).
type FetchListedStep struct {
	// In is the table; URL its URL column; Path the template of where each
	// image is stored, relative to Out's folder ("images/{md5hash}.jpg").
	In   string `yaml:"in"`
	URL  string `yaml:"url"`
	Path string `yaml:"path"`
	// MD5, when set, is a column holding each image's MD5, checked.
	MD5 string `yaml:"md5"`
	// Out is the table of available rows (all of In's columns).
	Out string `yaml:"out"`
}

// PMCFiguresStep builds WebDataset shards of figures and captions from
// ROCO's listing: each line of Links names a PubMed Central package and a
// figure in it, Captions gives each figure id its caption. Packages are
// fetched one by one and only the figure is kept.
type PMCFiguresStep struct {
	Links    string `yaml:"links"`
	Captions string `yaml:"captions"`
	// Out is the shard pattern with one "%d"-style counter, e.g.
	// "roco/test-radiology-%06d.tar"; PerShard samples go in each.
	Out      string `yaml:"out"`
	PerShard int    `yaml:"per_shard"`
}

// datasetError is a validation error about one recipe.
func datasetError(file string, i int, name, field, format string, args ...any) error {
	return &FieldError{File: file, Task: name, Index: -1, Field: fmt.Sprintf("datasets[%d] (%q) %s", i, name, field), Msg: fmt.Sprintf(format, args...)}
}

var hexRE = regexp.MustCompile(`^[0-9a-fA-F]+$`)

// validateDatasets checks the recipes: names, tasks that exist, files with
// a URL or a place, checksums of the right length, steps with exactly one
// kind and their required fields.
func (s *Suite) validateDatasets() error {
	var errs []error
	seen := map[string]bool{}
	taskNames := map[string]bool{}
	for _, t := range s.Tasks {
		taskNames[t.Name] = true
	}
	for i, d := range s.Datasets {
		bad := func(field, format string, args ...any) {
			errs = append(errs, datasetError(s.path, i, d.Name, field, format, args...))
		}
		switch {
		case strings.TrimSpace(d.Name) == "":
			bad("name", "required")
		case strings.ContainsAny(d.Name, `/\ `) || d.Name == "." || d.Name == "..":
			bad("name", "%q: must be usable as a folder name (no slashes or spaces)", d.Name)
		case seen[d.Name]:
			bad("name", "duplicate")
		}
		seen[d.Name] = true
		if len(d.Tasks) == 0 {
			bad("tasks", "required: the tasks this data set serves")
		}
		for _, t := range d.Tasks {
			if !taskNames[t] {
				bad("tasks", "no task %q in the suite", t)
			}
		}
		if d.Access != "" && !slices.Contains(Accesses, d.Access) {
			bad("access", "unknown access %q (allowed: open, registration, manual)", d.Access)
		}
		if d.Access != "" && d.Access != Open && strings.TrimSpace(d.Instructions) == "" {
			bad("instructions", "required for %s data sets: say where to get the files", d.Access)
		}
		if len(d.Files) == 0 && len(d.Steps) == 0 {
			bad("files", "a recipe needs files or steps")
		}
		for j, f := range d.Files {
			field := fmt.Sprintf("files[%d]", j)
			if f.URL == "" && f.Path == "" {
				bad(field, "give url or path")
			}
			if (d.Access == "" || d.Access == Open) && f.URL == "" {
				bad(field+".url", "required for open data sets")
			}
			if f.URL != "" {
				if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
					bad(field+".url", "%q is not an http(s) URL", f.URL)
				} else if f.Path == "" && path.Base(u.Path) == "/" {
					bad(field+".path", "required: %q names no file", f.URL)
				}
			}
			if f.SHA256 != "" && (len(f.SHA256) != 64 || !hexRE.MatchString(f.SHA256)) {
				bad(field+".sha256", "%q is not 64 hex digits", f.SHA256)
			}
			if f.MD5 != "" && (len(f.MD5) != 32 || !hexRE.MatchString(f.MD5)) {
				bad(field+".md5", "%q is not 32 hex digits", f.MD5)
			}
			if f.Size < 0 {
				bad(field+".size", "%d is negative", f.Size)
			}
		}
		for j, st := range d.Steps {
			for _, msg := range st.problems() {
				bad(fmt.Sprintf("steps[%d]", j), "%s", msg)
			}
		}
		for j, e := range d.Expect {
			if e.Glob == "" {
				bad(fmt.Sprintf("expect[%d].glob", j), "required")
			}
			if e.Count < 0 || e.Rows < 0 {
				bad(fmt.Sprintf("expect[%d]", j), "count and rows must not be negative")
			}
		}
	}
	return errors.Join(errs...)
}

// problems lists what is wrong with one step.
func (s Step) problems() []string {
	kind := s.Kind()
	if kind == "" {
		return []string{fmt.Sprintf("want exactly one of %s", strings.Join(StepKinds, ", "))}
	}
	var out []string
	need := func(field, v string) {
		if strings.TrimSpace(v) == "" {
			out = append(out, fmt.Sprintf("%s.%s: required", kind, field))
		}
	}
	convert := func(c Convert, images string) {
		switch c {
		case NoConvert:
		case ConvertPNG:
			need("images", images)
		default:
			out = append(out, fmt.Sprintf("%s.convert: unknown conversion %q (allowed: png)", kind, c))
		}
	}
	switch {
	case s.Unpack != nil:
		need("archive", s.Unpack.Archive)
		need("to", s.Unpack.To)
		if s.Unpack.Strip < 0 {
			out = append(out, "unpack.strip: must not be negative")
		}
	case s.FolderTable != nil:
		need("root", s.FolderTable.Root)
		need("out", s.FolderTable.Out)
		convert(s.FolderTable.Convert, s.FolderTable.Images)
	case s.Table != nil:
		need("in", s.Table.In)
		need("out", s.Table.Out)
		need("path", s.Table.Path)
		need("label", s.Table.Label)
		if !strings.Contains(s.Table.Path, "{") {
			out = append(out, fmt.Sprintf("table.path: %q names no column ({column})", s.Table.Path))
		}
		if h := s.Table.Holdout; h != nil && !(h.Fraction > 0 && h.Fraction <= 1) {
			out = append(out, fmt.Sprintf("table.holdout.fraction: %v is not in (0, 1]", h.Fraction))
		}
		convert(s.Table.Convert, s.Table.Images)
	case s.Crops != nil:
		need("annotations", s.Crops.Annotations)
		need("images", s.Crops.Images)
		need("out", s.Crops.Out)
		need("crops", s.Crops.Crops)
		if s.Crops.Format != "bbbc041" && s.Crops.Format != "coco" {
			out = append(out, fmt.Sprintf("crops.format: %q (allowed: bbbc041, coco)", s.Crops.Format))
		}
	case s.VideoFrames != nil:
		v := s.VideoFrames
		need("ids", v.IDs)
		need("video", v.Video)
		need("frames", v.Frames)
		if _, err := ParseIDRange(v.IDs); err != nil && v.IDs != "" {
			out = append(out, fmt.Sprintf("video_frames.ids: %v", err))
		}
		if v.Every < 1 {
			out = append(out, "video_frames.every: must be at least 1")
		}
		if (v.Phase == "") != (v.PhaseOut == "") || (v.Tools == "") != (v.ToolsOut == "") {
			out = append(out, "video_frames: phase needs phase_out and tools needs tools_out (and back)")
		}
		if v.Phase == "" && v.Tools == "" {
			out = append(out, "video_frames: give phase or tools annotations")
		}
	case s.NPZ != nil:
		need("npz", s.NPZ.NPZ)
		need("split", s.NPZ.Split)
		need("out", s.NPZ.Out)
	case s.FetchListed != nil:
		need("in", s.FetchListed.In)
		need("url", s.FetchListed.URL)
		need("path", s.FetchListed.Path)
		need("out", s.FetchListed.Out)
	case s.PMCFigures != nil:
		need("links", s.PMCFigures.Links)
		need("captions", s.PMCFigures.Captions)
		need("out", s.PMCFigures.Out)
		if !strings.Contains(s.PMCFigures.Out, "%") {
			out = append(out, fmt.Sprintf("pmc_figures.out: %q has no %%d counter", s.PMCFigures.Out))
		}
		if s.PMCFigures.PerShard < 0 {
			out = append(out, "pmc_figures.per_shard: must not be negative")
		}
	}
	return out
}

// ParseIDRange reads "41-80" or "1,3,5-7" into the listed numbers.
func ParseIDRange(s string) ([]int, error) {
	var ids []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.Atoi(strings.TrimSpace(a))
		if err != nil {
			return nil, fmt.Errorf("%q: %q is not a number", s, a)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(strings.TrimSpace(b)); err != nil {
				return nil, fmt.Errorf("%q: %q is not a number", s, b)
			}
		}
		if hi < lo || lo < 0 {
			return nil, fmt.Errorf("%q: bad range %q", s, part)
		}
		for i := lo; i <= hi; i++ {
			ids = append(ids, i)
		}
	}
	return ids, nil
}
