package prepare

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bmca/bmca/eval/tasks"
	"github.com/schollz/progressbar/v3"
)

// unpack extracts an archive, refusing members that would land outside the
// target folder. Members already extracted with the same size are kept, so
// an interrupted extraction resumes quickly.
func (e *env) unpack(ctx context.Context, s *tasks.UnpackStep) error {
	archive, to := e.path(s.Archive), e.path(s.To)
	lower := strings.ToLower(archive)
	var err error
	switch {
	case strings.HasSuffix(lower, ".zip"):
		err = e.unzip(ctx, archive, to, s)
	case strings.HasSuffix(lower, ".tar"), strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		err = e.untar(ctx, archive, to, s)
	default:
		return fmt.Errorf("%s: unknown archive type (zip, tar, tar.gz and tgz are read)", archive)
	}
	if err != nil {
		return fmt.Errorf("unpack %s: %w", archive, err)
	}
	return nil
}

// target maps a member name to its destination, "" when it is skipped.
func target(name, to string, s *tasks.UnpackStep) (string, error) {
	name = strings.ReplaceAll(name, `\`, "/")
	if len(s.Include) > 0 {
		ok := false
		for _, inc := range s.Include {
			if matchElems(strings.Split(path.Clean(inc), "/"), strings.Split(strings.Trim(name, "/"), "/")) {
				ok = true
				break
			}
		}
		if !ok {
			return "", nil
		}
	}
	elems := strings.Split(strings.Trim(name, "/"), "/")
	// macOS resource forks in zips made on a Mac are not data.
	if elems[0] == "__MACOSX" || strings.HasPrefix(elems[len(elems)-1], "._") {
		return "", nil
	}
	if s.From != "" {
		at := slices.IndexFunc(elems[:len(elems)-1], func(e string) bool { return strings.TrimSpace(e) == s.From })
		if at < 0 {
			return "", nil
		}
		elems = elems[at+1:]
	}
	if len(elems) <= s.Strip {
		return "", nil
	}
	rel := path.Clean(strings.Join(elems[s.Strip:], "/"))
	if path.IsAbs(name) || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("member %q would be written outside %s", name, to)
	}
	if s.Flatten {
		rel = path.Base(rel)
	}
	return filepath.Join(to, filepath.FromSlash(rel)), nil
}

func (e *env) unzip(ctx context.Context, archive, to string, s *tasks.UnpackStep) error {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return err
	}
	defer zr.Close()
	bar := countBar(e.log, len(zr.File), "unpack "+filepath.Base(archive))
	defer bar.Finish()
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		_ = bar.Add(1)
		dst, err := target(f.Name, to, s)
		if err != nil || dst == "" || f.FileInfo().IsDir() {
			if err != nil {
				return err
			}
			continue
		}
		if !f.Mode().IsRegular() {
			continue // links are not followed or created
		}
		if fi, err := os.Stat(dst); err == nil && fi.Size() == int64(f.UncompressedSize64) {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		err = writeFile(dst, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return nil
}

func (e *env) untar(ctx context.Context, archive, to string, s *tasks.UnpackStep) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	bar := byteBar(e.log, fi.Size(), "unpack "+filepath.Base(archive))
	defer bar.Finish()
	var r io.Reader = io.TeeReader(f, bar)
	if lower := strings.ToLower(archive); strings.HasSuffix(lower, ".gz") || strings.HasSuffix(lower, ".tgz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue // folders are made as needed; links are not created
		}
		dst, err := target(h.Name, to, s)
		if err != nil {
			return err
		}
		if dst == "" {
			continue
		}
		if fi, err := os.Stat(dst); err == nil && fi.Size() == h.Size {
			continue
		}
		if err := writeFile(dst, tr); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
}

// writeFile copies r to path through a temporary file.
func writeFile(path string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func countBar(w io.Writer, total int, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
}
