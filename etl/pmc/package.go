// Package pmc reads PubMed Central Open Access material: article packages
// (the .tar.gz files of the OA service holding an article's .nxml and its
// figure images, or the folders they extract to), the OA file list CSV,
// and the license codes that split BIOMEDICA into commercial,
// noncommercial and other subsets.
//
//	for src, err := range pmc.Discover(ctx, []string{"/data/oa_package"}) {
//		pkg, err := pmc.Open(src)
//		art, err := jats.Parse(bytes.NewReader(pkg.XML))
//		name, ok := pkg.Resolve(art.Figures[0].Graphic) // "koaf197f1" → "koaf197f1.jpg"
//		data, err := pkg.ReadFile(name)
//	}
package pmc

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bmca/bmca/etl/jats"
)

// MaxMemberBytes bounds the size of one file read from a package; a
// larger image is reported as unreadable instead of exhausting memory.
const MaxMemberBytes = 256 << 20

// Kind says what a package source is.
type Kind int

const (
	// Archive is a .tar.gz (or .tgz, .tar) package as the OA service
	// publishes it.
	Archive Kind = iota
	// Dir is an extracted package: a folder holding one article XML and
	// its images.
	Dir
	// XMLFile is an article XML read on its own; its images are looked up
	// in the folder that holds it.
	XMLFile
)

func (k Kind) String() string {
	switch k {
	case Archive:
		return "archive"
	case Dir:
		return "folder"
	case XMLFile:
		return "xml"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Source is one article package found by Discover.
type Source struct {
	// Path is the archive, the folder or the XML file.
	Path string
	// Kind says which.
	Kind Kind
	// Name is the package name: the archive's base name without
	// .tar.gz/.tgz/.tar ("PMC12419688"), the folder's base name, or the
	// XML file's base name without its extension.
	Name string
}

// Package is an opened article package.
type Package struct {
	Source
	// XMLName is the file name of the article XML inside the package.
	XMLName string
	// XML is the article XML.
	XML []byte

	files map[string]*member // lower-cased base name → file
}

// member is a file of a package: its bytes for an archive (read when the
// package is opened), its path for a folder (read on demand).
type member struct {
	name string // base name as stored
	data []byte
	path string
	err  error // why an archive member could not be kept
}

// imageFileExtensions are the files a package keeps besides its XML:
// everything a figure's graphic may resolve to. Other members (PDF,
// supplementary data, videos) are skipped without being read.
var imageFileExtensions = []string{"jpg", "jpeg", "png", "gif", "tif", "tiff", "webp", "bmp"}

// resolveOrder is the order in which Resolve tries extensions for an href
// that names none. GIF is absent on purpose: in PMC packages the .gif
// next to a figure's .jpg is a thumbnail, so a missing .jpg must read as
// a missing image, not as a 100-pixel stand-in.
var resolveOrder = []string{"jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp"}

// Open reads a package: for an archive, the article XML and every image
// member (other members are skipped); for a folder or XML file, the XML,
// with images read later by ReadFile. The article XML is the package's
// .nxml file (the first in name order if there are several), else its
// only .xml file whose root element is <article>.
func Open(src Source) (*Package, error) {
	var (
		p   *Package
		err error
	)
	switch src.Kind {
	case Archive:
		p, err = openArchive(src)
	case Dir:
		p, err = openDir(src, "")
	case XMLFile:
		p, err = openDir(Source{Path: filepath.Dir(src.Path), Kind: Dir, Name: src.Name}, filepath.Base(src.Path))
		if p != nil {
			p.Source = src
		}
	default:
		err = fmt.Errorf("unknown source kind %v", src.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", src.Path, err)
	}
	return p, nil
}

func openArchive(src Source) (*Package, error) {
	f, err := os.Open(src.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	p := &Package{Source: src, files: map[string]*member{}}
	var xmls []*member // candidate article XMLs, .nxml first
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("tar (expected a PMC .tar.gz package): %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		base := path.Base(hdr.Name)
		ext := lowerExt(base)
		isXML := ext == "nxml" || ext == "xml"
		if !isXML && !slices.Contains(imageFileExtensions, ext) {
			continue
		}
		m := &member{name: base}
		if hdr.Size > MaxMemberBytes {
			m.err = fmt.Errorf("member %s is %d bytes, more than the %d read from a package", hdr.Name, hdr.Size, MaxMemberBytes)
		} else if m.data, err = io.ReadAll(tr); err != nil {
			return nil, fmt.Errorf("member %s: %w", hdr.Name, err)
		}
		if isXML {
			if m.err == nil && (ext == "nxml" || isArticleXML(bytes.NewReader(m.data))) {
				xmls = append(xmls, m)
			}
			continue
		}
		if _, dup := p.files[strings.ToLower(base)]; !dup {
			p.files[strings.ToLower(base)] = m
		}
	}
	x, err := chooseXML(xmls)
	if err != nil {
		return nil, err
	}
	p.XMLName, p.XML = x.name, x.data
	return p, nil
}

// chooseXML picks the article XML: the first .nxml by name, else the only
// article .xml.
func chooseXML(cands []*member) (*member, error) {
	slices.SortFunc(cands, func(a, b *member) int {
		an, bn := lowerExt(a.name) == "nxml", lowerExt(b.name) == "nxml"
		if an != bn {
			if an {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	switch {
	case len(cands) == 0:
		return nil, errors.New("no article XML (expected an .nxml file, or an .xml file whose root element is <article>)")
	case lowerExt(cands[0].name) == "nxml" || len(cands) == 1:
		return cands[0], nil
	}
	names := make([]string, len(cands))
	for i, c := range cands {
		names[i] = c.name
	}
	return nil, fmt.Errorf("several article XML files (%s) and no .nxml to choose", strings.Join(names, ", "))
}

// openDir opens an extracted package; xmlName, when set, names its article XML.
func openDir(src Source, xmlName string) (*Package, error) {
	entries, err := os.ReadDir(src.Path)
	if err != nil {
		return nil, err
	}
	p := &Package{Source: src, files: map[string]*member{}}
	var xmls []*member
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		name := e.Name()
		full := filepath.Join(src.Path, name)
		ext := lowerExt(name)
		switch {
		case xmlName != "" && name == xmlName:
			xmls = append(xmls, &member{name: name, path: full})
		case xmlName == "" && ext == "nxml":
			xmls = append(xmls, &member{name: name, path: full})
		case xmlName == "" && ext == "xml" && isArticleFile(full):
			xmls = append(xmls, &member{name: name, path: full})
		case slices.Contains(imageFileExtensions, ext):
			if _, dup := p.files[strings.ToLower(name)]; !dup {
				p.files[strings.ToLower(name)] = &member{name: name, path: full}
			}
		}
	}
	x, err := chooseXML(xmls)
	if err != nil {
		return nil, err
	}
	data, err := readLimited(x.path)
	if err != nil {
		return nil, err
	}
	p.XMLName, p.XML = x.name, data
	return p, nil
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxMemberBytes {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d read from a package", p, st.Size(), MaxMemberBytes)
	}
	return io.ReadAll(f)
}

// Resolve finds the image file a <graphic xlink:href> names: the file of
// that name if the package has it, else the href's ImageID with the first
// of .jpg, .jpeg, .png, .tif, .tiff, .webp, .bmp the package has. Names
// compare without case, and directories in the href are ignored. A .gif is
// returned only when the href names it.
func (p *Package) Resolve(href string) (name string, ok bool) {
	base := path.Base(strings.ReplaceAll(strings.TrimSpace(href), `\`, "/"))
	if href == "" || base == "." || base == "/" {
		return "", false
	}
	if m, ok := p.files[strings.ToLower(base)]; ok {
		return m.name, true
	}
	stem := strings.ToLower(jats.ImageID(base))
	for _, ext := range resolveOrder {
		if m, ok := p.files[stem+"."+ext]; ok {
			return m.name, true
		}
	}
	return "", false
}

// ReadFile returns the bytes of an image file of the package, named as
// Resolve returned it.
func (p *Package) ReadFile(name string) ([]byte, error) {
	m, ok := p.files[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("package %s has no file %s", p.Path, name)
	}
	if m.err != nil {
		return nil, fmt.Errorf("package %s: %w", p.Path, m.err)
	}
	if m.data != nil {
		return m.data, nil
	}
	data, err := readLimited(m.path)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", p.Path, err)
	}
	return data, nil
}

// Files returns the names of the package's image files, sorted.
func (p *Package) Files() []string {
	names := make([]string, 0, len(p.files))
	for _, m := range p.files {
		names = append(names, m.name)
	}
	slices.Sort(names)
	return names
}

func lowerExt(name string) string {
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
		return strings.ToLower(name[dot+1:])
	}
	return ""
}

// isArticleFile reports whether the XML file at p has <article> as its
// root element.
func isArticleFile(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	return isArticleXML(f)
}
