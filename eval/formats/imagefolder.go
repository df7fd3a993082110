package formats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// fileEntry is one image file of a folder or table.
type fileEntry struct {
	path  string // as opened
	key   string // as reported
	label string
	size  int64
	mtime int64
}

type imageFolder struct {
	files       []fileEntry
	fingerprint string
}

func openImageFolder(spec Spec) (Source, error) {
	if spec.Captions {
		return nil, fmt.Errorf("imagefolder data has labels (folder names), not captions")
	}
	roots, err := expand(spec.Paths, true)
	if err != nil {
		return nil, fmt.Errorf("imagefolder: %w", err)
	}
	src := &imageFolder{}
	h := sha256.New()
	for r, root := range roots {
		entries, err := os.ReadDir(root)
		if err != nil {
			return nil, fmt.Errorf("imagefolder %s: %w", root, err)
		}
		classes := 0
		for _, e := range entries {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			classes++
			dir := filepath.Join(root, e.Name())
			if spec.Subdir != "" {
				dir = filepath.Join(dir, spec.Subdir)
				if !isDir(dir) {
					return nil, fmt.Errorf("imagefolder %s: class folder %q has no sub-folder %q", root, e.Name(), spec.Subdir)
				}
			}
			files, err := imagesUnder(dir)
			if err != nil {
				return nil, fmt.Errorf("imagefolder %s: %w", root, err)
			}
			for _, f := range files {
				f.label = e.Name()
				f.key, _ = filepath.Rel(root, f.path)
				f.key = filepath.ToSlash(f.key)
				src.files = append(src.files, f)
				// The root's position, not its path: the caller's key holds
				// the paths, and a relative one would tie this to the
				// working directory.
				fmt.Fprintf(h, "%d\t%s\t%d\t%d\n", r, f.key, f.size, f.mtime)
			}
		}
		if classes == 0 {
			return nil, fmt.Errorf("imagefolder %s has no class sub-folders: %w", root, ErrAbsent)
		}
	}
	if len(src.files) == 0 {
		return nil, fmt.Errorf("imagefolder %s: class folders hold no images (%s): %w", strings.Join(roots, ", "), strings.Join(ImageExtensions, " "), ErrAbsent)
	}
	src.fingerprint = hex.EncodeToString(h.Sum(nil))
	return src, nil
}

// imagesUnder lists the image files below dir, in lexical path order.
func imagesUnder(dir string) ([]fileEntry, error) {
	var out []fileEntry
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isImageFile(d.Name()) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fileEntry{path: path, size: info.Size(), mtime: info.ModTime().UnixNano()})
		return nil
	})
	return out, err
}

func isImageFile(name string) bool {
	return slices.Contains(ImageExtensions, strings.ToLower(filepath.Ext(name)))
}

func (s *imageFolder) Fingerprint() string { return s.fingerprint }
func (s *imageFolder) Len() int            { return len(s.files) }

func (s *imageFolder) Records(ctx context.Context) iter.Seq2[Record, error] {
	return readFiles(ctx, s.files, nil)
}

// readFiles yields the files' records, reading each image when its turn
// comes; captions[i], if captions is not nil, are file i's captions.
func readFiles(ctx context.Context, files []fileEntry, captions [][]string) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for i, f := range files {
			if err := ctx.Err(); err != nil {
				yield(Record{}, err)
				return
			}
			data, err := os.ReadFile(f.path)
			if err != nil {
				yield(Record{}, fmt.Errorf("image %s: %w", f.key, err))
				return
			}
			rec := Record{Key: f.key, Source: f.path, Image: data, Label: f.label}
			if captions != nil {
				rec.Captions = captions[i]
			}
			if !yield(rec, nil) {
				return
			}
		}
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
