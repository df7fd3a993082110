package prepare

import (
	"errors"
	"image/color"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bmca/bmca/data/remote/remotetest"
	"github.com/bmca/bmca/eval/formats"
	"github.com/bmca/bmca/eval/tasks"
)

// lc25000Replica is a tiny LC25000.zip: lung_colon_image_set/<set>/<class>/*.jpeg.
func lc25000Replica(t *testing.T) []byte {
	files := map[string][]byte{}
	for i, class := range []string{"lung_image_sets/lung_aca", "lung_image_sets/lung_n", "colon_image_sets/colon_aca"} {
		for j := range 2 {
			files[filepath.ToSlash(filepath.Join("lung_colon_image_set", class, string(rune('a'+j))+".png"))] = pngOf(t, 8, 8, color.Gray{Y: uint8(40 * (i + 1))})
		}
	}
	files["__MACOSX/lung_colon_image_set/._junk"] = []byte("resource fork")
	return makeZip(t, files)
}

func lc25000Recipe(url, sum string) tasks.Dataset {
	return tasks.Dataset{
		Name:   "lc25000",
		Tasks:  []string{"lc25000-lung"},
		Files:  []tasks.DataFile{{URL: url, SHA256: sum}},
		Steps:  []tasks.Step{{Unpack: &tasks.UnpackStep{Archive: "{downloads}/LC25000.zip", To: "lc25000"}}},
		Expect: []tasks.Expectation{{Glob: "lc25000/lung_colon_image_set/lung_image_sets/*/*.png", Count: 4}},
	}
}

// TestDownloadResumeAndRerun: a partial download left by an interrupted run
// is resumed with a Range request; a second run skips everything quickly.
func TestDownloadResumeAndRerun(t *testing.T) {
	data := lc25000Replica(t)
	srv := remotetest.New(map[string][]byte{"/LC25000.zip": data})
	defer srv.Close()
	root := t.TempDir()
	opts := testOptions(root)
	d := lc25000Recipe(srv.URL("/LC25000.zip"), sha(data))

	// An earlier run stopped after half the file.
	half := len(data) / 2
	writeFileT(t, filepath.Join(root, "downloads", "lc25000", "LC25000.zip.part"), data[:half])
	// And this run's connection drops once mid-body as well.
	srv.Fault("/LC25000.zip", remotetest.Fault{DropAfter: 100, Times: 1})
	mustPrepare(t, d, opts)
	ranges := srv.Ranges()
	if len(ranges) < 2 || ranges[0] != "bytes="+strconv.Itoa(half)+"-" {
		t.Fatalf("requests' Range headers %q: want the first to resume at byte %d", ranges, half)
	}
	got, err := os.ReadFile(filepath.Join(root, "downloads", "lc25000", "LC25000.zip"))
	if err != nil || sha(got) != sha(data) {
		t.Fatalf("downloaded file differs from the served one (err %v)", err)
	}
	if _, err := os.Stat(filepath.Join(root, "lc25000", "__MACOSX")); err == nil {
		t.Error("macOS resource forks were extracted")
	}
	labels := readLabels(t, formats.Spec{Format: formats.ImageFolder, Paths: []string{filepath.Join(root, "lc25000/lung_colon_image_set/lung_image_sets")}})
	if len(labels) != 4 {
		t.Errorf("image folder reads %d images, want 4", len(labels))
	}

	requests := srv.Requests("/LC25000.zip")
	start := time.Now()
	if r := runOne(t, d, opts); r.Status != UpToDate {
		t.Fatalf("second run: %s (%v), want up to date", r.Status, r.Err)
	}
	if srv.Requests("/LC25000.zip") != requests {
		t.Error("second run contacted the server")
	}
	t.Logf("re-run took %v", time.Since(start))

	// A changed recipe (here: a new expectation) runs again, but the
	// verified download is not fetched again.
	d.Expect = append(d.Expect, tasks.Expectation{Glob: "lc25000/**/*.png", Count: 6})
	mustPrepare(t, d, opts)
	if srv.Requests("/LC25000.zip") != requests {
		t.Error("a changed recipe downloaded its verified file again")
	}
	// Prepared output removed by hand: the run notices and redoes the steps.
	os.RemoveAll(filepath.Join(root, "lc25000"))
	mustPrepare(t, d, opts)
}

// TestChecksumMismatch: a download that does not match the publisher's
// checksum fails clearly and is not accepted.
func TestChecksumMismatch(t *testing.T) {
	data := lc25000Replica(t)
	srv := remotetest.New(map[string][]byte{"/LC25000.zip": data})
	defer srv.Close()
	root := t.TempDir()
	wrong := strings.Repeat("ab", 32)
	r := runOne(t, lc25000Recipe(srv.URL("/LC25000.zip"), wrong), testOptions(root))
	if r.Status != Failed || !errors.Is(r.Err, ErrChecksum) || !strings.Contains(r.Err.Error(), wrong) || !strings.Contains(r.Err.Error(), sha(data)) {
		t.Fatalf("got %s: %v; want a failure naming both checksums", r.Status, r.Err)
	}
	for _, f := range []string{"LC25000.zip", "LC25000.zip.part"} {
		if _, err := os.Stat(filepath.Join(root, "downloads", "lc25000", f)); err == nil {
			t.Errorf("%s kept after a checksum mismatch", f)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "lc25000")); err == nil {
		t.Error("steps ran on a rejected download")
	}
	// A file placed by hand that does not match is reported, not deleted.
	d := lc25000Recipe("", wrong)
	d.Access, d.Instructions = tasks.Registration, "get it from the publisher"
	d.Files[0].Path = "{downloads}/LC25000.zip"
	writeFileT(t, filepath.Join(root, "downloads", "lc25000", "LC25000.zip"), data)
	r = runOne(t, d, testOptions(root))
	if r.Status != Failed || !errors.Is(r.Err, ErrChecksum) {
		t.Fatalf("manual file with wrong checksum: %s %v", r.Status, r.Err)
	}
	if _, err := os.Stat(filepath.Join(root, "downloads", "lc25000", "LC25000.zip")); err != nil {
		t.Error("a file the user placed was deleted")
	}
}

// TestRegistration: missing hand-fetched files are listed with where they
// go; once placed they are verified and converted like downloads.
func TestRegistration(t *testing.T) {
	data := lc25000Replica(t)
	root := t.TempDir()
	d := lc25000Recipe("https://example.org/LC25000.zip", sha(data))
	d.Access, d.Instructions = tasks.Registration, "sign up at the publisher's page"
	r := runOne(t, d, testOptions(root))
	want := filepath.Join(root, "downloads", "lc25000", "LC25000.zip")
	if r.Status != NeedsFiles || len(r.Missing) != 1 || r.Missing[0].Path != want || r.Instructions == "" {
		t.Fatalf("got %s, missing %v; want needs files at %s with instructions", r.Status, r.Missing, want)
	}
	writeFileT(t, want, data)
	mustPrepare(t, d, testOptions(root))
}

// TestTokenOnlyForHub: $HF_TOKEN goes to the hub only; a server that
// requires it elsewhere sees no token (and the error does not show it).
func TestTokenOnlyForHub(t *testing.T) {
	for u, want := range map[string]bool{
		"https://huggingface.co/datasets/x/resolve/main/a.tar": true, "https://cdn-lfs.huggingface.co/a": true,
		"http://huggingface.co/a": false, "https://huggingface.co.evil.org/a": false, "https://zenodo.org/a": false,
	} {
		if isHub(u) != want {
			t.Errorf("isHub(%q) = %v", u, !want)
		}
	}
	data := []byte("payload")
	srv := remotetest.New(map[string][]byte{"/a.bin": data})
	defer srv.Close()
	srv.Token = "hf_secret_value"
	opts := testOptions(t.TempDir())
	opts.Token = "hf_secret_value"
	r := runOne(t, tasks.Dataset{Name: "x", Tasks: []string{"x"}, Files: []tasks.DataFile{{URL: srv.URL("/a.bin")}}}, opts)
	if r.Status != Failed || !strings.Contains(r.Err.Error(), "401") || strings.Contains(r.Err.Error(), "hf_secret_value") {
		t.Fatalf("got %s %v: want HTTP 401 without the token in the message", r.Status, r.Err)
	}
}

// TestUserAgent: requests name the client (Dataverse refuses default agents).
func TestUserAgent(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("User-Agent")
		w.Write([]byte("x"))
	}))
	defer srv.Close()
	mustPrepare(t, tasks.Dataset{Name: "ua", Tasks: []string{"x"}, Files: []tasks.DataFile{{URL: srv.URL + "/f.bin"}}}, Options{DataRoot: t.TempDir()})
	if got != userAgent {
		t.Errorf("User-Agent %q, want %q", got, userAgent)
	}
}
