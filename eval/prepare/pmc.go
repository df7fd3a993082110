package prepare

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/eval/tasks"
)

// pmcLink is one line of ROCO's dlinks file.
type pmcLink struct {
	id, url, figure string
}

// readPMCLinks reads "ROCO_id <TAB> wget … URL … <TAB> figure file" lines.
func readPMCLinks(file string) ([]pmcLink, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []pmcLink
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		parts := strings.Split(strings.TrimRight(sc.Text(), "\r"), "\t")
		if len(parts) == 1 && strings.TrimSpace(parts[0]) == "" {
			continue
		}
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s:%d: want id, download command and figure file separated by tabs", file, line)
		}
		u := ""
		for _, w := range strings.Fields(parts[1]) {
			if strings.Contains(w, "://") {
				u = w
			}
		}
		if u == "" {
			return nil, fmt.Errorf("%s:%d: no URL in %q", file, line, parts[1])
		}
		// PMC serves the FTP tree over HTTPS at the same paths.
		u = strings.Replace(u, "ftp://", "https://", 1)
		out = append(out, pmcLink{id: strings.TrimSpace(parts[0]), url: u, figure: strings.TrimSpace(parts[2])})
	}
	return out, sc.Err()
}

// readCaptions reads "id <TAB> caption" lines.
func readCaptions(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		id, caption, ok := strings.Cut(sc.Text(), "\t")
		if ok {
			out[strings.TrimSpace(id)] = strings.TrimSpace(caption)
		}
	}
	return out, sc.Err()
}

// pmcFigures fetches each listed figure from its article package (kept in
// the download folder, so a rerun fetches only what is missing) and writes
// the figures with their captions as WebDataset shards. Packages that can
// no longer be fetched are counted and left out.
func (e *env) pmcFigures(ctx context.Context, s *tasks.PMCFiguresStep) error {
	links, err := readPMCLinks(e.path(s.Links))
	if err != nil {
		return err
	}
	captions, err := readCaptions(e.path(s.Captions))
	if err != nil {
		return err
	}
	cache := filepath.Join(e.downloads, "figures")
	opts := e.opts.Remote
	opts.Token = ""
	var failed atomic.Int64
	bar := countBar(e.log, len(links), "fetch PMC figures")
	err = parallel(ctx, len(links), fetchWorkers, func(i int) error {
		defer bar.Add(1)
		l := links[i]
		dst := filepath.Join(cache, l.id+path.Ext(l.figure))
		if _, err := os.Stat(dst); err == nil {
			return nil
		}
		if err := fetchFigure(ctx, l, dst, opts); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed.Add(1)
		}
		return nil
	})
	_ = bar.Finish()
	if err != nil {
		return err
	}
	var samples []wdsSample
	for _, l := range links {
		ext := strings.TrimPrefix(strings.ToLower(path.Ext(l.figure)), ".")
		if ext == "jpeg" {
			ext = "jpg"
		}
		file := filepath.Join(cache, l.id+path.Ext(l.figure))
		caption, ok := captions[l.id]
		if _, err := os.Stat(file); err != nil || !ok {
			continue
		}
		samples = append(samples, wdsSample{key: l.id, image: file, ext: ext, caption: caption})
	}
	e.notef("%d of %d figures available (%d packages could not be fetched)", len(samples), len(links), failed.Load())
	if len(samples) == 0 {
		return fmt.Errorf("none of the %d figures could be fetched", len(links))
	}
	return writeShards(e.path(s.Out), s.PerShard, samples)
}

// fetchFigure streams a package and keeps only the named figure.
func fetchFigure(ctx context.Context, l pmcLink, dst string, opts remote.Options) error {
	r, err := remote.Open(ctx, l.url, opts)
	if err != nil {
		return err
	}
	defer r.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("%s: %w", l.url, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s: no %s in the package", l.url, l.figure)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", l.url, err)
		}
		if h.Typeflag == tar.TypeReg && path.Base(h.Name) == l.figure {
			return writeFile(dst, tr)
		}
	}
}

// wdsSample is one image with its caption.
type wdsSample struct {
	key, image, ext, caption string
}

// writeShards writes samples as tar shards named by pattern (a printf
// pattern with one integer), perShard each (0 = 1,000).
func writeShards(pattern string, perShard int, samples []wdsSample) error {
	if perShard <= 0 {
		perShard = 1000
	}
	slices.SortFunc(samples, func(a, b wdsSample) int { return strings.Compare(a.key, b.key) })
	for shard := 0; shard*perShard < len(samples); shard++ {
		part := samples[shard*perShard : min(len(samples), (shard+1)*perShard)]
		name := fmt.Sprintf(pattern, shard)
		if err := writeShard(name, part); err != nil {
			return fmt.Errorf("shard %s: %w", name, err)
		}
	}
	return nil
}

func writeShard(name string, samples []wdsSample) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	tmp := name + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	add := func(member string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: member, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, s := range samples {
		img, err := os.ReadFile(s.image)
		if err == nil {
			err = add(s.key+"."+s.ext, img)
		}
		if err == nil {
			err = add(s.key+".txt", []byte(s.caption))
		}
		if err != nil {
			f.Close()
			os.Remove(tmp)
			return err
		}
	}
	err = errors.Join(tw.Close(), f.Close())
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, name)
}
