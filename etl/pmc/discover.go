package pmc

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
)

// Discover yields the packages under inputs, in order: each input in turn,
// folders walked in lexical order. An input is
//
//   - a package archive (.tar.gz, .tgz, .tar);
//   - an article XML (.nxml, or .xml with an <article> root), read with the
//     images in its folder;
//   - an extracted package: a folder that holds one article XML (a folder
//     holding several yields each XML as its own package, sharing the
//     folder's images);
//   - a folder of any of these, searched recursively. A package folder is
//     not searched further.
//
// A path that does not exist or is none of these is an error naming it,
// yielded once, after which the sequence ends; so is a folder that cannot
// be read. Hidden entries (".name") are skipped.
func Discover(ctx context.Context, inputs []string) iter.Seq2[Source, error] {
	return func(yield func(Source, error) bool) {
		for _, in := range inputs {
			st, err := os.Stat(in)
			if err != nil {
				yield(Source{}, fmt.Errorf("input %s: %w", in, err))
				return
			}
			if !st.IsDir() {
				src, ok := fileSource(in)
				if !ok {
					yield(Source{}, fmt.Errorf("input %s: expected a package (.tar.gz, .tgz, .tar), an article XML (.nxml or .xml with an <article> root) or a folder", in))
					return
				}
				if !yield(src, nil) {
					return
				}
				continue
			}
			if err := walk(ctx, filepath.Clean(in), yield); err != nil {
				if !errors.Is(err, errStop) {
					yield(Source{}, err)
				}
				return
			}
		}
	}
}

var errStop = errors.New("stopped")

// walk yields the packages of one folder.
func walk(ctx context.Context, dir string, yield func(Source, error) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("input folder %s: %w", dir, err)
	}
	var xmls []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
			continue
		}
		switch lowerExt(name) {
		case "nxml":
			xmls = append(xmls, name)
		case "xml":
			if isArticleFile(filepath.Join(dir, name)) {
				xmls = append(xmls, name)
			}
		}
	}
	switch {
	case len(xmls) == 1:
		if !yield(Source{Path: dir, Kind: Dir, Name: filepath.Base(dir)}, nil) {
			return errStop
		}
		return nil
	case len(xmls) > 1:
		for _, x := range xmls {
			p := filepath.Join(dir, x)
			if !yield(Source{Path: p, Kind: XMLFile, Name: stripExt(x)}, nil) {
				return errStop
			}
		}
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(dir, name)
		if e.IsDir() {
			if err := walk(ctx, full, yield); err != nil {
				return err
			}
			continue
		}
		if !e.Type().IsRegular() {
			continue
		}
		if name, ok := archiveName(name); ok {
			if !yield(Source{Path: full, Kind: Archive, Name: name}, nil) {
				return errStop
			}
		}
	}
	return nil
}

// fileSource classifies an input file.
func fileSource(p string) (Source, bool) {
	base := filepath.Base(p)
	if name, ok := archiveName(base); ok {
		return Source{Path: p, Kind: Archive, Name: name}, true
	}
	switch lowerExt(base) {
	case "nxml":
		return Source{Path: p, Kind: XMLFile, Name: stripExt(base)}, true
	case "xml":
		if isArticleFile(p) {
			return Source{Path: p, Kind: XMLFile, Name: stripExt(base)}, true
		}
	}
	return Source{}, false
}

// archiveName returns the package name of an archive file name.
func archiveName(base string) (string, bool) {
	lower := strings.ToLower(base)
	for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
		if strings.HasSuffix(lower, ext) && len(base) > len(ext) {
			return base[:len(base)-len(ext)], true
		}
	}
	return "", false
}

func stripExt(base string) string {
	if dot := strings.LastIndexByte(base, '.'); dot > 0 {
		return base[:dot]
	}
	return base
}

// isArticleXML reports whether the first element of r is <article>. It
// reads at most the first 64 KiB.
func isArticleXML(r io.Reader) bool {
	d := xml.NewDecoder(io.LimitReader(r, 64<<10))
	d.Strict = false
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local == "article"
		}
	}
}
