package prepare

import (
	"archive/tar"
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/data/remote/remotetest"
	"github.com/bmca/bmca/eval/formats"
	"github.com/bmca/bmca/eval/tasks"

	"golang.org/x/image/tiff"
)

func readTestFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestRSNADicomTable: the RSNA layout (a class table with one row per box,
// DICOM images) becomes a path,class table of PNGs, one row per patient.
func TestRSNADicomTable(t *testing.T) {
	mr := readTestFile(t, "dicom/testdata/MR_small.dcm")
	ct := readTestFile(t, "dicom/testdata/CT_small.dcm")
	zipped := makeZip(t, map[string][]byte{
		"stage_2_detailed_class_info.csv": []byte("patientId,class\np1,Lung Opacity\np1,Lung Opacity\np2,Normal\np3,No Lung Opacity / Not Normal\n"),
		"stage_2_train_images/p1.dcm":     mr,
		"stage_2_train_images/p2.dcm":     ct,
		"stage_2_train_images/p3.dcm":     mr,
	})
	root := t.TempDir()
	writeFileT(t, filepath.Join(root, "downloads", "rsna", "rsna-pneumonia-detection-challenge.zip"), zipped)
	d := tasks.Dataset{
		Name: "rsna", Tasks: []string{"rsna-pneumonia"}, Access: tasks.Registration, Instructions: "Kaggle",
		Files: []tasks.DataFile{{Path: "{downloads}/rsna-pneumonia-detection-challenge.zip", SHA256: sha(zipped)}},
		Steps: []tasks.Step{
			{Unpack: &tasks.UnpackStep{Archive: "{downloads}/rsna-pneumonia-detection-challenge.zip", To: "{downloads}/raw"}},
			{Table: &tasks.TableStep{In: "{downloads}/raw/stage_2_detailed_class_info.csv", Out: "rsna-pneumonia/test.csv",
				Path: "stage_2_train_images/{patientId}.dcm", Label: "class", OutLabel: "class", Dedupe: true,
				Holdout: &tasks.Holdout{Fraction: 1, Seed: "x", Key: "patientId"}, Convert: tasks.ConvertPNG, Images: "rsna-pneumonia/png"}},
		},
		Expect: []tasks.Expectation{{Glob: "rsna-pneumonia/test.csv", Rows: 3}, {Glob: "rsna-pneumonia/png/**/*.png", Count: 3}},
	}
	mustPrepare(t, d, testOptions(root))
	labels := readLabels(t, formats.Spec{Format: formats.CSV, Paths: []string{filepath.Join(root, "rsna-pneumonia/test.csv")}, LabelKey: "class"})
	want := map[string]string{"png/stage_2_train_images/p1.png": "Lung Opacity", "png/stage_2_train_images/p2.png": "Normal", "png/stage_2_train_images/p3.png": "No Lung Opacity / Not Normal"}
	if fmt.Sprint(labels) != fmt.Sprint(want) {
		t.Errorf("table reads %v, want %v", labels, want)
	}
	// The PNG is the reader's rendering: CT_small has no window, so its
	// range fills 0..255.
	img, err := png.Decode(bytes.NewReader(readTestFile(t, filepath.Join(root, "rsna-pneumonia/png/stage_2_train_images/p2.png"))))
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := uint8(255), uint8(0)
	for _, v := range img.(*image.Gray).Pix {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo != 0 || hi != 255 || img.Bounds().Dx() != 128 {
		t.Errorf("converted CT is %v with range %d..%d, want 128 wide spanning 0..255", img.Bounds(), lo, hi)
	}

	// Conflicting labels for one image are an error naming the line.
	writeFileT(t, filepath.Join(root, "bad.csv"), []byte("patientId,class\np1,Normal\np1,Lung Opacity\n"))
	e := &env{ds: d, opts: testOptions(root).withDefaults(), downloads: filepath.Join(root, "downloads", "rsna"), log: io.Discard}
	err = e.table(t.Context(), &tasks.TableStep{In: "bad.csv", Out: "x.csv", Path: "downloads/rsna/raw/stage_2_train_images/{patientId}.dcm", Label: "class", Dedupe: true})
	if err == nil || !strings.Contains(err.Error(), "bad.csv:3") {
		t.Errorf("conflicting labels: %v", err)
	}
}

// TestHoldout: the seeded subset is stable, near its fraction, and another
// seed draws another subset.
func TestHoldout(t *testing.T) {
	a, b := &tasks.Holdout{Fraction: 0.3, Seed: "one"}, &tasks.Holdout{Fraction: 0.3, Seed: "two"}
	again := &tasks.Holdout{Fraction: 0.3, Seed: "one"} // a fresh value with a's settings
	inA, same := 0, 0
	for i := range 2000 {
		k := fmt.Sprintf("patient-%d", i)
		if inHoldout(a, k) != inHoldout(again, k) {
			t.Fatalf("%s: a holdout's choice changed between two values with the same fraction and seed", k)
		}
		if inHoldout(a, k) {
			inA++
			if inHoldout(b, k) {
				same++
			}
		}
	}
	if inA < 540 || inA > 660 {
		t.Errorf("%d of 2000 kept at fraction 0.3", inA)
	}
	if same > inA/2 {
		t.Errorf("seeds one and two share %d of %d", same, inA)
	}
}

// TestFolderTableWithTIFF16: class folders with their own names become a
// table with the task's labels; 16-bit TIFF channels become stretched PNGs.
func TestFolderTableWithTIFF16(t *testing.T) {
	root := t.TempDir()
	g := image.NewGray16(image.Rect(0, 0, 4, 2))
	for i := range 8 {
		g.SetGray16(i%4, i/4, color.Gray16{Y: uint16(1000 + 100*i)})
	}
	var tb bytes.Buffer
	if err := tiff.Encode(&tb, g, nil); err != nil {
		t.Fatal(err)
	}
	writeFileT(t, filepath.Join(root, "raw/High squamous intra-epithelial lesion/a_ch3.tif"), tb.Bytes())
	writeFileT(t, filepath.Join(root, "raw/High squamous intra-epithelial lesion/a_ch1.tif"), tb.Bytes())
	writeFileT(t, filepath.Join(root, "raw/Negative for Intraepithelial malignancy/sub/b_ch3.tif"), tb.Bytes())
	writeFileT(t, filepath.Join(root, "raw/notes/readme_ch3.tif"), tb.Bytes())
	step := &tasks.FolderTableStep{Root: "raw", Out: "out/all.csv", Files: "*_ch3.tif", Convert: tasks.ConvertPNG, Images: "out/png",
		Labels: map[string]string{"High squamous intra-epithelial lesion": "HSIL", "Negative for Intraepithelial malignancy": "NILM", "notes": ""}}
	e := &env{opts: testOptions(root).withDefaults(), log: io.Discard}
	if err := e.folderTable(t.Context(), step); err != nil {
		t.Fatal(err)
	}
	labels := readLabels(t, formats.Spec{Format: formats.CSV, Paths: []string{filepath.Join(root, "out/all.csv")}})
	want := map[string]string{"png/High squamous intra-epithelial lesion/a_ch3.png": "HSIL", "png/Negative for Intraepithelial malignancy/sub/b_ch3.png": "NILM"}
	if fmt.Sprint(labels) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", labels, want)
	}
	img, err := png.Decode(bytes.NewReader(readTestFile(t, filepath.Join(root, "out/png/High squamous intra-epithelial lesion/a_ch3.png"))))
	if err != nil {
		t.Fatal(err)
	}
	if p := img.(*image.Gray).Pix; p[0] != 0 || p[7] != 255 || p[1] != 36 {
		t.Errorf("stretched pixels %v, want 0, 36, …, 255", p)
	}
	// A class folder the step does not know is an error.
	writeFileT(t, filepath.Join(root, "raw/Squamous cell carcinoma/c_ch3.tif"), tb.Bytes())
	if err := e.folderTable(t.Context(), step); err == nil || !strings.Contains(err.Error(), "Squamous cell carcinoma") {
		t.Errorf("unknown folder: %v", err)
	}
}

// TestCrops: BBBC041 and COCO boxes become crops of the right region and
// size, labelled with their category.
func TestCrops(t *testing.T) {
	root := t.TempDir()
	img := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	for y := range 30 {
		for x := range 40 {
			c := color.NRGBA{R: 255, A: 255} // left half red, right half blue
			if x >= 20 {
				c = color.NRGBA{B: 255, A: 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	writeFileT(t, filepath.Join(root, "malaria/images/s1.png"), b.Bytes())
	bbbc := `[{"image": {"checksum": "x", "pathname": "/images/s1.png", "shape": {"r": 30, "c": 40, "channels": 3}},
	  "objects": [{"bounding_box": {"minimum": {"r": 2, "c": 1}, "maximum": {"r": 12, "c": 9}}, "category": "red blood cell"},
	              {"bounding_box": {"minimum": {"r": 5, "c": 25}, "maximum": {"r": 25, "c": 35}}, "category": "difficult"}]}]`
	writeFileT(t, filepath.Join(root, "malaria/test.json"), []byte(bbbc))
	coco := map[string]any{
		"images":      []map[string]any{{"id": 7, "file_name": "s1.png"}},
		"annotations": []map[string]any{{"image_id": 7, "category_id": 3, "bbox": []float64{22, 0, 10, 5}}},
		"categories":  []map[string]any{{"id": 3, "name": "Taenia spp. egg"}},
	}
	cj, _ := json.Marshal(coco)
	writeFileT(t, filepath.Join(root, "eggs/test.json"), cj)
	e := &env{opts: testOptions(root).withDefaults(), log: io.Discard}
	cases := []struct {
		step  tasks.CropsStep
		sizes map[string]image.Point
		blue  map[string]bool
		label map[string]string
	}{
		{tasks.CropsStep{Annotations: "malaria/test.json", Format: "bbbc041", Images: "malaria", Out: "bbbc041/test_crops.csv", Crops: "bbbc041/crops"},
			map[string]image.Point{"crops/images/s1_000.png": {8, 10}, "crops/images/s1_001.png": {10, 20}},
			map[string]bool{"crops/images/s1_000.png": false, "crops/images/s1_001.png": true},
			map[string]string{"crops/images/s1_000.png": "red blood cell", "crops/images/s1_001.png": "difficult"}},
		{tasks.CropsStep{Annotations: "eggs/test.json", Format: "coco", Images: "malaria/images", Out: "eggs/test_crops.csv", Crops: "eggs/crops"},
			map[string]image.Point{"crops/s1_000.png": {10, 5}}, map[string]bool{"crops/s1_000.png": true},
			map[string]string{"crops/s1_000.png": "Taenia spp. egg"}},
	}
	for _, c := range cases {
		if err := e.crops(t.Context(), &c.step); err != nil {
			t.Fatal(err)
		}
		labels := readLabels(t, formats.Spec{Format: formats.CSV, Paths: []string{filepath.Join(root, c.step.Out)}})
		if fmt.Sprint(labels) != fmt.Sprint(c.label) {
			t.Errorf("%s: labels %v, want %v", c.step.Format, labels, c.label)
		}
		for name, size := range c.sizes {
			crop, err := png.Decode(bytes.NewReader(readTestFile(t, filepath.Join(root, filepath.Dir(c.step.Out), name))))
			if err != nil {
				t.Fatal(err)
			}
			r, _, bl, _ := crop.At(0, 0).RGBA()
			if crop.Bounds().Size() != size || (bl > r) != c.blue[name] {
				t.Errorf("%s %s: %v blue=%v, want %v blue=%v", c.step.Format, name, crop.Bounds().Size(), bl > r, size, c.blue[name])
			}
		}
	}
}

// npyBytes encodes a C-order array as .npy version 1.
func npyBytes(descr string, shape []int, data []byte) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = fmt.Sprint(d)
	}
	s := strings.Join(dims, ", ")
	if len(shape) == 1 {
		s += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, s)
	for (10+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	out := append([]byte("\x93NUMPY\x01\x00"), binary.LittleEndian.AppendUint16(nil, uint16(len(header)))...)
	return append(append(out, header...), data...)
}

// TestNPZToParquet: a MedMNIST-style npz split becomes parquet the task
// reads, with the images and labels in order.
func TestNPZToParquet(t *testing.T) {
	root := t.TempDir()
	pix := make([]byte, 3*2*2)
	for i := range pix {
		pix[i] = byte(20 * i)
	}
	labels := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 1), 0), 1)
	npz := makeZip(t, map[string][]byte{
		"test_images.npy":  npyBytes("|u1", []int{3, 2, 2}, pix),
		"test_labels.npy":  npyBytes("<i8", []int{3, 1}, labels),
		"train_images.npy": npyBytes("|u1", []int{1, 2, 2}, pix[:4]),
		"train_labels.npy": npyBytes("<i8", []int{1, 1}, labels[:8]),
	})
	writeFileT(t, filepath.Join(root, "breastmnist.npz"), npz)
	e := &env{opts: testOptions(root).withDefaults(), log: io.Discard}
	if err := e.npzToParquet(t.Context(), &tasks.NPZStep{NPZ: "breastmnist.npz", Split: "test", Out: "medmnist/breastmnist/test.parquet"}); err != nil {
		t.Fatal(err)
	}
	src, err := formats.Open(formats.Spec{Format: formats.Parquet, Paths: []string{filepath.Join(root, "medmnist/breastmnist/test*.parquet")}, Labels: true})
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for rec, err := range src.Records(t.Context()) {
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(rec.Image))
		if err != nil {
			t.Fatal(err)
		}
		if got := img.(*image.Gray).Pix; !bytes.Equal(got, pix[4*i:4*i+4]) || rec.Label != []string{"1", "0", "1"}[i] {
			t.Errorf("row %d: pixels %v label %s", i, got, rec.Label)
		}
		i++
	}
	if i != 3 {
		t.Errorf("%d rows, want 3", i)
	}
}

// TestNPZToParquetMultiHot: ChestMNIST's (N, 14)-style labels become a
// list per row, which a zeroshot_multilabel task reads as multi-hot.
func TestNPZToParquetMultiHot(t *testing.T) {
	root := t.TempDir()
	pix := make([]byte, 2*2*2)
	labels := []byte{1, 0, 1, 0, 0, 1} // two images, three classes
	writeFileT(t, filepath.Join(root, "chestmnist.npz"), makeZip(t, map[string][]byte{
		"test_images.npy": npyBytes("|u1", []int{2, 2, 2}, pix),
		"test_labels.npy": npyBytes("|u1", []int{2, 3}, labels),
	}))
	e := &env{opts: testOptions(root).withDefaults(), log: io.Discard}
	if err := e.npzToParquet(t.Context(), &tasks.NPZStep{NPZ: "chestmnist.npz", Split: "test", Out: "medmnist/chestmnist/test.parquet"}); err != nil {
		t.Fatal(err)
	}
	src, err := formats.Open(formats.Spec{Format: formats.Parquet, Paths: []string{filepath.Join(root, "medmnist/chestmnist/test.parquet")}, Labels: true, LabelList: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rec, err := range src.Records(t.Context()) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.ReplaceAll(rec.Label, formats.ValueSeparator, ","))
	}
	if strings.Join(got, " ") != "1,0,1 0,0,1" {
		t.Errorf("labels %q, want [1,0,1 0,0,1]", got)
	}
}

// TestVideoFrames extracts frames from a tiny generated video (needs
// ffmpeg; skipped without it) and labels them from Cholec80-style files.
func TestVideoFrames(t *testing.T) {
	root := t.TempDir()
	e := &env{opts: testOptions(root).withDefaults(), log: io.Discard}
	step := &tasks.VideoFramesStep{IDs: "41", Video: "cholec80/videos/video{id}.mp4", Every: 25, Frames: "cholec80/frames",
		Phase: "cholec80/phase_annotations/video{id}-phase.txt", PhaseOut: "cholec80/phases_test.csv",
		Tools: "cholec80/tool_annotations/video{id}-tool.txt", ToolsOut: "cholec80/tools_test.csv"}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		e.opts.FFmpeg = "ffmpeg-not-installed-here"
		if err := e.videoFrames(t.Context(), step); err == nil || !strings.Contains(err.Error(), "apt-get install ffmpeg") {
			t.Errorf("without ffmpeg: %v, want an error saying how to install it", err)
		}
		t.Skip("ffmpeg not on PATH: frame extraction not exercised (install ffmpeg to run it)")
	}
	video := filepath.Join(root, "cholec80/videos/video41.mp4")
	os.MkdirAll(filepath.Dir(video), 0o755)
	// 3 s of 25 fps test pattern: frames 0, 25, 50 are kept.
	if out, err := exec.Command(ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=3", "-pix_fmt", "yuv420p", video).CombinedOutput(); err != nil {
		t.Fatalf("making the test video: %v: %s", err, out)
	}
	var phase strings.Builder
	phase.WriteString("Frame\tPhase\n")
	for f := range 75 {
		p := "Preparation"
		if f >= 30 {
			p = "CalotTriangleDissection"
		}
		fmt.Fprintf(&phase, "%d\t%s\n", f, p)
	}
	writeFileT(t, filepath.Join(root, "cholec80/phase_annotations/video41-phase.txt"), []byte(phase.String()))
	writeFileT(t, filepath.Join(root, "cholec80/tool_annotations/video41-tool.txt"),
		[]byte("Frame\tGrasper\tBipolar\tHook\n0\t1\t0\t0\n25\t1\t0\t1\n50\t0\t0\t1\n"))
	if err := e.videoFrames(t.Context(), step); err != nil {
		t.Fatal(err)
	}
	phases := readLabels(t, formats.Spec{Format: formats.CSV, Paths: []string{filepath.Join(root, "cholec80/phases_test.csv")}})
	wantPhases := map[string]string{"frames/video41/000001.jpg": "Preparation", "frames/video41/000002.jpg": "Preparation", "frames/video41/000003.jpg": "CalotTriangleDissection"}
	if fmt.Sprint(phases) != fmt.Sprint(wantPhases) {
		t.Errorf("phases %v, want %v", phases, wantPhases)
	}
	tools := readLabels(t, formats.Spec{Format: formats.CSV, Paths: []string{filepath.Join(root, "cholec80/tools_test.csv")}})
	wantTools := map[string]string{"frames/video41/000001.jpg": "Grasper", "frames/video41/000003.jpg": "Hook"}
	if fmt.Sprint(tools) != fmt.Sprint(wantTools) {
		t.Errorf("tools %v, want %v (frame 25 shows two tools and is left out)", tools, wantTools)
	}
}

// TestFetchListed: rows whose image downloads and matches its MD5 are kept;
// a dead link and a changed image are left out.
func TestFetchListed(t *testing.T) {
	good, changed := pngOf(t, 3, 3, color.Gray{Y: 9}), pngOf(t, 3, 3, color.Gray{Y: 10})
	srv := remotetest.New(map[string][]byte{"/a.jpg": good, "/c.jpg": changed})
	defer srv.Close()
	root := t.TempDir()
	sum := md5.Sum(good)
	h := hex.EncodeToString(sum[:])
	table := fmt.Sprintf("md5hash,url,three_partition_label\n%s,%s,benign\n%s,%s,malignant\n%s,%s,non-neoplastic\n",
		h, srv.URL("/a.jpg"), "0123456789abcdef0123456789abcdef", srv.URL("/gone.jpg"), "fedcba9876543210fedcba9876543210", srv.URL("/c.jpg"))
	writeFileT(t, filepath.Join(root, "fitzpatrick17k/fitzpatrick17k.csv"), []byte(table))
	e := &env{ds: tasks.Dataset{Name: "f"}, opts: testOptions(root).withDefaults(), log: io.Discard}
	if err := e.fetchListed(t.Context(), &tasks.FetchListedStep{In: "fitzpatrick17k/fitzpatrick17k.csv", URL: "url", Path: "images/{md5hash}.jpg", MD5: "md5hash", Out: "fitzpatrick17k/available.csv"}); err != nil {
		t.Fatal(err)
	}
	header, rows, err := readTable(filepath.Join(root, "fitzpatrick17k/available.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(header) != 3 || len(rows) != 1 || rows[0][0] != h || rows[0][2] != "benign" {
		t.Errorf("available rows %v (header %v), want only the benign row", rows, header)
	}
}

// TestPMCFigures: figures are pulled out of article packages and written
// with their captions as WebDataset shards.
func TestPMCFigures(t *testing.T) {
	fig := pngOf(t, 5, 5, color.Gray{Y: 200})
	pkg := makeTarGz(t, map[string][]byte{"PMC1/fig1.jpg": fig, "PMC1/article.nxml": []byte("<article/>")})
	srv := remotetest.New(map[string][]byte{"/pub/pmc/oa_package/00/01/PMC1.tar.gz": pkg})
	defer srv.Close()
	root := t.TempDir()
	writeFileT(t, filepath.Join(root, "roco/dlinks.txt"), []byte(
		"ROCO_00001\twget -r "+srv.URL("/pub/pmc/oa_package/00/01/PMC1.tar.gz")+" -P /path/to/Dir\tfig1.jpg\n"+
			"ROCO_00002\twget -r "+srv.URL("/pub/pmc/oa_package/00/02/PMC2.tar.gz")+" -P /path/to/Dir\tfig2.jpg\n"))
	writeFileT(t, filepath.Join(root, "roco/captions.txt"), []byte("ROCO_00001\t Axial CT of the chest.\nROCO_00002\t gone\n"))
	e := &env{ds: tasks.Dataset{Name: "roco"}, opts: testOptions(root).withDefaults(), downloads: filepath.Join(root, "downloads", "roco"), log: io.Discard}
	if err := e.pmcFigures(t.Context(), &tasks.PMCFiguresStep{Links: "roco/dlinks.txt", Captions: "roco/captions.txt", Out: "roco/test-radiology-%06d.tar"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "roco/test-radiology-000000.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	members := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		members[h.Name] = string(data)
	}
	if len(members) != 2 || members["ROCO_00001.txt"] != "Axial CT of the chest." || members["ROCO_00001.jpg"] != string(fig) {
		t.Errorf("shard members %v", sortedKeys(members))
	}
}
