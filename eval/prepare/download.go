package prepare

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/schollz/progressbar/v3"
)

// ErrChecksum is wrapped by errors about files that do not match the
// publisher's checksum or size.
var ErrChecksum = errors.New("checksum mismatch")

// remoteOptions are the HTTP options for u: the token only for the hub.
func (e *env) remoteOptions(u string) remote.Options {
	o := e.opts.Remote
	o.Token = ""
	if isHub(u) {
		o.Token = e.opts.Token
	}
	return o
}

// isHub reports whether u is on the Hugging Face hub, the only host that
// receives $HF_TOKEN.
func isHub(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" {
		return false
	}
	h := strings.ToLower(p.Hostname())
	return h == "huggingface.co" || strings.HasSuffix(h, ".huggingface.co")
}

// download fetches f into dst through dst.part, resuming a partial file left
// by an earlier run, and accepts it only when size and checksums match.
func (e *env) download(ctx context.Context, f tasks.DataFile, dst string) error {
	part := dst + ".part"
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	var have int64
	if fi, err := os.Stat(part); err == nil {
		have = fi.Size()
	}
	if f.Size > 0 && have > f.Size {
		// Longer than the file can be: not a prefix of it.
		have = 0
	}
	complete := f.Size > 0 && have == f.Size
	if !complete {
		if err := e.fetch(ctx, f, part, have); err != nil {
			return err
		}
	}
	if err := e.checkSums(f, part, true); err != nil {
		os.Remove(part)
		return fmt.Errorf("%s: %w; the download was not accepted and was removed (run again to fetch it anew; if it fails again the publisher may have changed the file)", f.URL, err)
	}
	if err := os.Rename(part, dst); err != nil {
		return err
	}
	return e.record(f, dst)
}

// fetch appends the bytes from offset on to part; a server that says
// there is nothing past offset leaves part as it is. Whether part is then
// the whole file is for the checksums to say.
func (e *env) fetch(ctx context.Context, f tasks.DataFile, part string, offset int64) error {
	r, err := remote.OpenAt(ctx, f.URL, offset, e.remoteOptions(f.URL))
	var se *remote.StatusError
	if errors.As(err, &se) && se.Status == http.StatusRequestedRangeNotSatisfiable && offset > 0 {
		return nil // the partial file is already whole
	}
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	defer r.Close()
	flag := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if offset == 0 {
		flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	out, err := os.OpenFile(part, flag, 0o644)
	if err != nil {
		return err
	}
	total := r.Size()
	if total < 0 {
		total = f.Size
	}
	if offset > 0 {
		e.notef("resuming %s at byte %d", filepath.Base(strings.TrimSuffix(part, ".part")), offset)
	}
	bar := byteBar(e.log, total, "download "+filepath.Base(strings.TrimSuffix(part, ".part")))
	_ = bar.Set64(offset)
	_, err = io.Copy(io.MultiWriter(out, bar), r)
	_ = bar.Finish()
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download %s: %w (the partial file is kept; run again to resume)", f.URL, err)
	}
	return nil
}

func byteBar(w io.Writer, total int64, desc string) *progressbar.ProgressBar {
	if total <= 0 {
		total = -1
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
}

// verify checks a file that is already in place, unless the state records
// it verified with the same size and time.
func (e *env) verify(f tasks.DataFile, path string, manual bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if known, ok := e.state.Files[path]; ok && !e.opts.Force && known.Size == fi.Size() && known.ModTime == fi.ModTime().UnixNano() {
		return nil
	}
	if err := e.checkSums(f, path, false); err != nil {
		if manual {
			return fmt.Errorf("%s: %w: the file put there is not the publisher's (another version, or a damaged download); fetch it again (%s)", path, err, e.ds.Instructions)
		}
		return fmt.Errorf("%s: %w: delete it to download it again", path, err)
	}
	return e.record(f, path)
}

// record notes a verified file in the state.
func (e *env) record(f tasks.DataFile, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	sum := ""
	switch {
	case f.SHA256 != "":
		sum = "sha256:" + strings.ToLower(f.SHA256)
	case f.MD5 != "":
		sum = "md5:" + strings.ToLower(f.MD5)
	}
	e.state.Files[path] = fileState{Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Checksum: sum}
	return e.state.save()
}

// checkSums compares size and checksums with the recipe's.
func (e *env) checkSums(f tasks.DataFile, path string, downloaded bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if f.Size > 0 && fi.Size() != f.Size {
		return fmt.Errorf("%w: %d bytes, the publisher's file has %d", ErrChecksum, fi.Size(), f.Size)
	}
	if f.SHA256 == "" && f.MD5 == "" {
		return nil
	}
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	var hs []io.Writer
	var s256, m5 hash.Hash
	if f.SHA256 != "" {
		s256 = sha256.New()
		hs = append(hs, s256)
	}
	if f.MD5 != "" {
		m5 = md5.New()
		hs = append(hs, m5)
	}
	var w io.Writer = io.MultiWriter(hs...)
	if fi.Size() > 64<<20 && !downloaded {
		bar := byteBar(e.log, fi.Size(), "verify "+filepath.Base(path))
		w = io.MultiWriter(w, bar)
		defer bar.Finish()
	}
	if _, err := io.Copy(w, in); err != nil {
		return err
	}
	if s256 != nil {
		if got := hex.EncodeToString(s256.Sum(nil)); !strings.EqualFold(got, f.SHA256) {
			return fmt.Errorf("%w: sha256 is %s, the publisher gives %s", ErrChecksum, got, strings.ToLower(f.SHA256))
		}
	}
	if m5 != nil {
		if got := hex.EncodeToString(m5.Sum(nil)); !strings.EqualFold(got, f.MD5) {
			return fmt.Errorf("%w: md5 is %s, the publisher gives %s", ErrChecksum, got, strings.ToLower(f.MD5))
		}
	}
	return nil
}
