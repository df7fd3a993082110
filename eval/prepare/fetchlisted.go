package prepare

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/eval/tasks"
)

// fetchWorkers is how many listed images are downloaded at once: polite to
// the small sites that host dermatology atlases.
const fetchWorkers = 4

// fetchListed downloads the image of every row and writes the rows whose
// image is there (and matches its MD5 when the table gives one). Rows
// whose image cannot be fetched are left out and counted, not fatal: the
// atlases behind Fitzpatrick17k have lost some images for good.
func (e *env) fetchListed(ctx context.Context, s *tasks.FetchListedStep) error {
	in, out := e.path(s.In), e.path(s.Out)
	header, rows, err := readTable(in)
	if err != nil {
		return err
	}
	urlCol, err := column(header, s.URL, in)
	if err != nil {
		return err
	}
	tmpl, err := newTemplate(s.Path, header, in)
	if err != nil {
		return err
	}
	md5Col := -1
	if s.MD5 != "" {
		if md5Col, err = column(header, s.MD5, in); err != nil {
			return err
		}
	}
	ok := make([]bool, len(rows))
	var failed atomic.Int64
	opts := e.opts.Remote
	opts.Token = ""
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 3
	}
	bar := countBar(e.log, len(rows), "fetch listed images")
	err = parallel(ctx, len(rows), fetchWorkers, func(i int) error {
		defer bar.Add(1)
		row := rows[i]
		rel, err := tmpl.fill(row, i+2)
		if err != nil {
			return err
		}
		dst := filepath.Join(filepath.Dir(out), filepath.FromSlash(rel))
		want := ""
		if md5Col >= 0 && md5Col < len(row) {
			want = strings.ToLower(strings.TrimSpace(row[md5Col]))
		}
		if fileMD5Matches(dst, want) {
			ok[i] = true
			return nil
		}
		if urlCol >= len(row) || strings.TrimSpace(row[urlCol]) == "" {
			failed.Add(1)
			return nil
		}
		if err := fetchOne(ctx, strings.TrimSpace(row[urlCol]), dst, opts); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed.Add(1)
			return nil
		}
		if !fileMD5Matches(dst, want) {
			os.Remove(dst)
			failed.Add(1)
			return nil
		}
		ok[i] = true
		return nil
	})
	_ = bar.Finish()
	if err != nil {
		return err
	}
	var kept [][]string
	for i, row := range rows {
		if ok[i] {
			kept = append(kept, row)
		}
	}
	e.notef("%d of %d listed images available, %d could not be fetched or did not match their checksum", len(kept), len(rows), failed.Load())
	if len(kept) == 0 {
		return fmt.Errorf("%s: none of the %d listed images could be fetched", in, len(rows))
	}
	return writeTable(out, header, kept)
}

// fileMD5Matches reports whether path exists and, when want is set, has
// that MD5.
func fileMD5Matches(path, want string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if want == "" {
		return true
	}
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == want
}

// fetchOne downloads url to dst through a temporary file.
func fetchOne(ctx context.Context, url, dst string, opts remote.Options) error {
	r, err := remote.Open(ctx, url, opts)
	if err != nil {
		return err
	}
	defer r.Close()
	return writeFile(dst, r)
}
