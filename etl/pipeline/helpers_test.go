package pipeline

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/etl/pmc"
)

// synthFig is a figure of a synthetic package; figures with the same seed
// have byte-identical images.
type synthFig struct {
	seed    int
	caption string
}

// writePackage writes an extracted package folder dir/name holding an
// article with the given PMCID and figures, and returns its path.
func writePackage(t testing.TB, dir, name, pmcid, licenseURL string, figs []synthFig) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	for i, f := range figs {
		href := fmt.Sprintf("%s-f%d", name, i)
		fmt.Fprintf(&body, `<p>As <xref ref-type="fig" rid="F%d">Figure %d</xref> shows.</p>`, i, i)
		fmt.Fprintf(&body, `<fig id="F%d"><label>Figure %d</label><caption><p>%s</p></caption><graphic xlink:href="%s"/></fig>`, i, i, f.caption, href)
		if err := os.WriteFile(filepath.Join(p, href+".jpg"), synthJPEG(t, f.seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	xml := fmt.Sprintf(`<?xml version="1.0"?>
<article xmlns:xlink="http://www.w3.org/1999/xlink"><front><article-meta>
<article-id pub-id-type="pmc">%s</article-id>
<title-group><article-title>Article %s</article-title></title-group>
<permissions><license xlink:href="%s"><license-p>License.</license-p></license></permissions>
</article-meta></front><body>%s</body></article>`, strings.TrimPrefix(pmcid, "PMC"), name, licenseURL, body.String())
	if err := os.WriteFile(filepath.Join(p, name+".nxml"), []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func synthJPEG(t testing.TB, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 32+seed%7, 24+seed%5))
	for y := range img.Rect.Dy() {
		for x := range img.Rect.Dx() {
			img.Set(x, y, color.RGBA{uint8(seed * 37), uint8(x * 8), uint8(y*8 + seed), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const (
	ccBY   = "http://creativecommons.org/licenses/by/4.0/"
	ccBYNC = "http://creativecommons.org/licenses/by-nc/4.0/"
)

// synthCorpus writes n packages of 1–3 figures, two of them sharing an
// image with an earlier package, under dir/in and returns that folder.
func synthCorpus(t testing.TB, dir string, n int) string {
	t.Helper()
	in := filepath.Join(dir, "in")
	for i := range n {
		var figs []synthFig
		for k := range 1 + i%3 {
			figs = append(figs, synthFig{seed: 10*i + k, caption: fmt.Sprintf("Caption %d of article %d.", k, i)})
		}
		if i == 5 || i == 9 {
			figs = append(figs, synthFig{seed: 0, caption: "The image of article 0 again."})
		}
		lic := ccBY
		if i%4 == 3 {
			lic = ccBYNC
		}
		writePackage(t, in, fmt.Sprintf("PMC%d", 1000+i), fmt.Sprintf("PMC%d", 1000+i), lic, figs)
	}
	return in
}

// outputFiles returns every shard and sizes file under dir with its
// content, keyed by path relative to dir.
func outputFiles(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, g := range pmc.Groups {
		entries, err := os.ReadDir(filepath.Join(dir, string(g)))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, string(g), e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[string(g)+"/"+e.Name()] = string(data)
		}
	}
	return out
}

func sameFiles(t *testing.T, got, want map[string]string) {
	t.Helper()
	var names []string
	for n := range want {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(got) != len(want) {
		var gn []string
		for n := range got {
			gn = append(gn, n)
		}
		slices.Sort(gn)
		t.Fatalf("files %v, want %v", gn, names)
	}
	for _, n := range names {
		if got[n] != want[n] {
			t.Errorf("%s differs", n)
		}
	}
}
