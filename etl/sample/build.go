package sample

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/bmca/bmca/data/phash"
	"github.com/bmca/bmca/etl/jats"
	"github.com/bmca/bmca/etl/pmc"
)

// MinSide is BIOMEDICA's size filter: an image is kept only when both its
// width and height exceed it.
const MinSide = 20

// Reason says why a figure did not become a sample.
type Reason string

// The reasons, in the order they are checked. Build reports the first
// five; a caller deduplicating across articles counts the last two.
const (
	NoCaption    Reason = "no_caption"    // the fig has no caption text
	NoGraphic    Reason = "no_graphic"    // the fig has no <graphic xlink:href>
	MissingImage Reason = "missing_image" // the href resolves to no image file in the package
	Undecodable  Reason = "undecodable"   // the image cannot be read, decoded or converted
	TooSmall     Reason = "too_small"     // width or height ≤ MinSide
	Duplicate    Reason = "duplicate"     // the same image file (SHA-256) was already written
	// DuplicateArticle counts the figures of an article already written
	// from another package (the same PMCID given twice).
	DuplicateArticle Reason = "duplicate_article"
)

// Reasons lists every Reason in order.
var Reasons = []Reason{NoCaption, NoGraphic, MissingImage, Undecodable, TooSmall, Duplicate, DuplicateArticle}

// ImageSource is where Build finds figure images; *pmc.Package is one.
type ImageSource interface {
	// Resolve finds the file a graphic href names.
	Resolve(href string) (name string, ok bool)
	// ReadFile reads it.
	ReadFile(name string) ([]byte, error)
}

// Options are the per-article inputs beyond the XML and its images.
type Options struct {
	// PackageName names the package ("PMC12419688"); it keys the samples
	// of an article without a PMCID and prefixes image_path.
	PackageName string
	// Entry is the article's OA file-list row, nil when there is none;
	// its citation, license and accession id take precedence over the XML's.
	Entry *pmc.Entry
	// VerifyJPEG fully decodes JPEG files, which are otherwise kept after
	// reading their header only.
	VerifyJPEG bool
}

// Sample is one figure ready to be written.
type Sample struct {
	// Key is the WebDataset key, "<article>-<figure index>-<image id>"
	// with every character outside [A-Za-z0-9_-] replaced by "_", so that
	// it holds no dot ("PMC12419688-0-koaf197f1").
	Key string
	// JPEG is the jpg member.
	JPEG []byte
	// Caption is the txt member.
	Caption string
	// JSON is the json member, a Record.
	JSON []byte
	// Hash is the SHA-256 of the image file as published.
	Hash          [32]byte
	Width, Height int
	// PHash is the jpg member's perceptual hash as in the json
	// (Extension.ImagePHash), "" when it could not be decoded.
	PHash string
}

// Result is what Build makes of one article.
type Result struct {
	// Article identifies the article: its PMCID, else the package name.
	Article string
	// License is the license code and Group its subset.
	License string
	Group   pmc.Group
	// Figures is the number of <fig> elements.
	Figures int
	// Samples are the figures kept, in document order.
	Samples []Sample
	// Dropped counts the other figures by reason.
	Dropped map[Reason]int
	// Errors holds, per dropped image, why it could not be used
	// (for MissingImage and Undecodable), for logs.
	Errors []error
}

// Build makes the samples of one article. It fails only when the JSON
// cannot be encoded; every problem with a figure drops that figure.
func Build(art *jats.Article, images ImageSource, opt Options) (*Result, error) {
	res := &Result{Figures: len(art.Figures), Dropped: map[Reason]int{}}
	accession := art.PMCID
	if accession == "" && opt.Entry != nil {
		accession = opt.Entry.AccessionID
	}
	res.Article = accession
	if res.Article == "" {
		res.Article = opt.PackageName
	}
	if opt.Entry != nil && opt.Entry.License != "" {
		res.License = pmc.NormalizeCode(opt.Entry.License)
	} else {
		res.License = pmc.LicenseFromArticle(art.License)
	}
	res.Group = pmc.GroupOf(res.License)

	type figImage struct {
		name       string
		data       []byte
		hash       [32]byte
		format     Format
		cfg        image.Config
		cfgErr     error
		imageFound bool
	}
	figs := make([]figImage, len(art.Figures))
	var set []ImageSetEntry
	context := map[string][]string{}
	for i, f := range art.Figures {
		if f.Graphic == "" {
			continue
		}
		if len(f.Context) > 0 {
			id := f.ImageID()
			context[id] = append(context[id], f.Context...)
		}
		name, ok := images.Resolve(f.Graphic)
		if !ok {
			continue
		}
		data, err := images.ReadFile(name)
		fi := &figs[i]
		fi.name, fi.imageFound = name, true
		if err != nil {
			fi.cfgErr = err
			continue
		}
		fi.data, fi.hash = data, sha256.Sum256(data)
		format, cfg, err := Probe(data)
		fi.format, fi.cfg, fi.cfgErr = format, cfg, err
		set = append(set, ImageSetEntry{
			ImageID:       f.ImageID(),
			ImageFileName: name,
			ImagePath:     path.Join(opt.PackageName, name),
			Caption:       f.Caption,
			Hash:          hex.EncodeToString(fi.hash[:]),
		})
	}

	tail, err := articleJSON(art, opt, accession, res.License, set, context)
	if err != nil {
		return nil, fmt.Errorf("article %s: %w", res.Article, err)
	}
	for i, f := range art.Figures {
		fi := figs[i]
		switch {
		case f.Caption == "":
			res.Dropped[NoCaption]++
			continue
		case f.Graphic == "":
			res.Dropped[NoGraphic]++
			continue
		case !fi.imageFound:
			res.Dropped[MissingImage]++
			res.Errors = append(res.Errors, fmt.Errorf("figure %s: graphic %q: no such image in the package", f.ID, f.Graphic))
			continue
		case fi.cfgErr != nil:
			res.Dropped[Undecodable]++
			res.Errors = append(res.Errors, fmt.Errorf("figure %s, image %s: %w", f.ID, fi.name, fi.cfgErr))
			continue
		case fi.cfg.Width <= MinSide || fi.cfg.Height <= MinSide:
			res.Dropped[TooSmall]++
			continue
		}
		jpg, err := ToJPEG(fi.data, fi.format, fi.cfg, opt.VerifyJPEG)
		if err != nil {
			res.Dropped[Undecodable]++
			res.Errors = append(res.Errors, fmt.Errorf("figure %s, image %s: %w", f.ID, fi.name, err))
			continue
		}
		head, err := figureJSON(f, fi.name, fi.hash, fi.cfg.Width, fi.cfg.Height)
		if err != nil {
			return nil, fmt.Errorf("article %s, figure %s: %w", res.Article, f.ID, err)
		}
		var ext Extension
		if h, err := phash.FromEncoded(jpg); err == nil {
			ext.ImagePHash = h.String()
		}
		extJSON, err := marshal(ext)
		if err != nil {
			return nil, fmt.Errorf("article %s, figure %s: %w", res.Article, f.ID, err)
		}
		res.Samples = append(res.Samples, Sample{
			Key:     Key(res.Article, i, f.ImageID()),
			JPEG:    jpg,
			Caption: f.Caption,
			JSON:    joinObjects(head, tail, extJSON),
			Hash:    fi.hash,
			Width:   fi.cfg.Width,
			Height:  fi.cfg.Height,
			PHash:   ext.ImagePHash,
		})
	}
	return res, nil
}

var keyUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// Key returns the WebDataset key of figure index of an article.
func Key(article string, index int, imageID string) string {
	k := article + "-" + strconv.Itoa(index)
	if imageID != "" {
		k += "-" + imageID
	}
	return keyUnsafe.ReplaceAllString(k, "_")
}

func figureJSON(f jats.Figure, name string, hash [32]byte, w, h int) ([]byte, error) {
	return marshal(FigureFields{
		ImageFileName:       name,
		ImageClusterID:      f.ImageID(),
		ImageHash:           hex.EncodeToString(hash[:]),
		ImagePrimaryLabel:   []string{},
		ImageSecondaryLabel: []string{},
		ImageSize:           [2]int{w, h},
	})
}

func articleJSON(art *jats.Article, opt Options, accession, license string, set []ImageSetEntry, context map[string][]string) ([]byte, error) {
	refs := make([]ReferenceID, len(art.References))
	for i, r := range art.References {
		ids := make([]string, len(r.IDs))
		for j, id := range r.IDs {
			ids[j] = id.Value
		}
		refs[i] = ReferenceID{Citation: r.Citation, ArticleIDList: ids}
	}
	citation := ""
	if opt.Entry != nil {
		citation = opt.Entry.Citation
	}
	if citation == "" {
		citation = Citation(art)
	}
	if set == nil {
		set = []ImageSetEntry{}
	}
	return marshal(ArticleFields{
		ImageSet:              set,
		ImageContext:          context,
		ArticleAccessionID:    accession,
		ArticleTitle:          art.Title,
		ArticleJournal:        journal(art, citation),
		ArticleDate:           date(art, citation),
		ArticleAbstract:       art.Abstract,
		ArticleMeshTerms:      []string{},
		ArticleKeywords:       nonNil(art.Keywords),
		ArticleReferenceIDs:   refs,
		ArticleReferenceCount: len(refs),
		ArticleReferenceList:  []string{},
		ArticleSubject:        nonNil(art.Subjects),
		ArticleCitation:       citation,
		ArticleLicense:        license,
		ArticleText:           art.Text,
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// joinObjects concatenates JSON objects' members into one object, in
// order; empty objects add nothing.
func joinObjects(objs ...[]byte) []byte {
	n := 2
	for _, o := range objs {
		n += len(o)
	}
	out := make([]byte, 0, n)
	out = append(out, '{')
	for _, o := range objs {
		members := bytes.TrimSpace(o[1 : len(o)-1])
		if len(members) == 0 {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, members...)
	}
	return append(out, '}')
}

// marshal encodes v without HTML escaping ("<xref>" stays readable in
// image_context) and without the encoder's trailing newline.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

var monthNames = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// Citation builds a citation in the OA file list's format from the XML:
// "Journal. YYYY Mon D; volume(issue):fpage-lpage", leaving out what the
// XML lacks.
func Citation(art *jats.Article) string {
	var b strings.Builder
	if art.Journal != "" {
		b.WriteString(strings.TrimSuffix(art.Journal, "."))
		b.WriteString(".")
	}
	if d := art.Date; d.Year != 0 {
		fmt.Fprintf(&b, " %d", d.Year)
		if d.Month != 0 {
			b.WriteString(" " + monthNames[d.Month-1])
			if d.Day != 0 {
				fmt.Fprintf(&b, " %d", d.Day)
			}
		}
	}
	loc := art.Volume
	if art.Issue != "" {
		loc += "(" + art.Issue + ")"
	}
	pages := art.FirstPage
	if pages != "" && art.LastPage != "" && art.LastPage != art.FirstPage {
		pages += "-" + art.LastPage
	}
	if pages == "" {
		pages = art.ELocationID
	}
	switch {
	case pages != "" && loc != "":
		loc += ":" + pages
	case pages != "":
		loc = pages
	}
	if loc != "" {
		b.WriteString("; " + loc)
	}
	return strings.TrimSpace(b.String())
}

// citationJournal is BIOMEDICA's extract_journal: the citation up to its
// first "." or ";".
var citationJournal = regexp.MustCompile(`^([A-Za-z\s().,-]+?)[.;]`)

// journal is the XML's abbreviated journal name, else the start of the
// citation as BIOMEDICA reads it.
func journal(art *jats.Article, citation string) string {
	if art.Journal != "" {
		return art.Journal
	}
	if m := citationJournal.FindStringSubmatch(citation); m != nil {
		return strings.TrimSpace(m[1])
	}
	return ""
}

// citationDate is BIOMEDICA's date pattern, applied after the citation's
// first ". ".
var citationDate = regexp.MustCompile(`\b(\d{4})\b(?:\s+([A-Za-z]{3,6}))?(?:\s+(\d{1,2}))?`)

var seasonMonths = map[string]int{"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}

// date is the article date as a Unix timestamp string: the XML's, else
// the citation's; "" when neither has a year.
func date(art *jats.Article, citation string) string {
	d := art.Date
	if d.IsZero() {
		_, after, ok := strings.Cut(citation, ". ")
		if m := citationDate.FindStringSubmatch(after); ok && m != nil {
			d.Year, _ = strconv.Atoi(m[1])
			word := strings.ToLower(m[2])
			if mo, ok := seasonMonths[word]; ok {
				d.Month = mo
			} else {
				for i, name := range monthNames {
					if len(word) >= 3 && strings.EqualFold(word[:3], name) {
						d.Month = i + 1
					}
				}
			}
			d.Day, _ = strconv.Atoi(m[3])
		}
	}
	if d.IsZero() {
		return ""
	}
	return strconv.FormatInt(d.Time().Unix(), 10)
}
