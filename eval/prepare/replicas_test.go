package prepare

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/data/remote/remotetest"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/parquet-go/parquet-go"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// This file runs the shipped biomedica40 recipes themselves on small
// replicas of their publishers' files (served by a local HTTP server, or
// placed by hand for registration data sets), then runs each served task
// through eval/tasks with a stand-in model: the layout prepare writes must
// be one the task reads, with labels that map to the task's classes.

func jpegOf(t *testing.T, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range 64 {
		img.Set(i%8, i/8, c)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tiff16(t *testing.T) []byte {
	t.Helper()
	g := image.NewGray16(image.Rect(0, 0, 6, 6))
	for i := range 36 {
		g.SetGray16(i%6, i/6, color.Gray16{Y: uint16(500 + 40*i)})
	}
	var b bytes.Buffer
	if err := tiff.Encode(&b, g, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tiffRGB(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := tiff.Encode(&b, image.NewRGBA(image.Rect(0, 0, 4, 4)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func bmpOf(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := bmp.Encode(&b, image.NewRGBA(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type imgCol struct {
	Bytes []byte `parquet:"bytes"`
	Path  string `parquet:"path"`
}

type ubenchRow struct {
	Image       imgCol `parquet:"image"`
	Modality    string `parquet:"modality"`
	Domain      string `parquet:"domain"`
	Stain       string `parquet:"stain"`
	Submodality string `parquet:"submodality"`
}

type dsadRow struct {
	Image imgCol `parquet:"image"`
	Organ string `parquet:"organ"`
}

func parquetOf[T any](t *testing.T, rows []T) []byte {
	t.Helper()
	var b bytes.Buffer
	w := parquet.NewGenericWriter[T](&b)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// replica is what a recipe's files hold: downloaded ones by URL path,
// hand-placed ones by recipe path.
type replica map[string][]byte

func replicas(t *testing.T, dicom []byte) map[string]replica {
	img := jpegOf(t, color.RGBA{R: 200, G: 100, B: 50, A: 255})
	out := map[string]replica{}

	boxes := []map[string]any{{
		"image": map[string]any{"pathname": "/images/s1.png"},
		"objects": []map[string]any{
			{"category": "red blood cell", "bounding_box": map[string]any{"minimum": map[string]int{"r": 0, "c": 0}, "maximum": map[string]int{"r": 4, "c": 4}}},
			{"category": "ring", "bounding_box": map[string]any{"minimum": map[string]int{"r": 2, "c": 2}, "maximum": map[string]int{"r": 8, "c": 8}}},
			{"category": "difficult", "bounding_box": map[string]any{"minimum": map[string]int{"r": 1, "c": 1}, "maximum": map[string]int{"r": 5, "c": 5}}},
		},
	}}
	bj, _ := json.Marshal(boxes)
	out["bbbc041"] = replica{"/bbbc/BBBC041/malaria.zip": makeZip(t, map[string][]byte{
		"malaria/images/s1.png": pngOf(t, 10, 10, color.Gray{Y: 90}), "malaria/test.json": bj, "malaria/training.json": []byte("[]")})}

	npz := func(labels []int64) []byte {
		pix := make([]byte, len(labels)*28*28)
		for i := range pix {
			pix[i] = byte(i)
		}
		var lb []byte
		for _, l := range labels {
			lb = binary.LittleEndian.AppendUint64(lb, uint64(l))
		}
		return makeZip(t, map[string][]byte{
			"test_images.npy": npyBytes("|u1", []int{len(labels), 28, 28}, pix),
			"test_labels.npy": npyBytes("<i8", []int{len(labels), 1}, lb)})
	}
	multiHot := func(rows [][14]byte) []byte { // ChestMNIST: (N, 14) uint8 labels
		pix := make([]byte, len(rows)*28*28)
		var lb []byte
		for _, r := range rows {
			lb = append(lb, r[:]...)
		}
		return makeZip(t, map[string][]byte{
			"test_images.npy": npyBytes("|u1", []int{len(rows), 28, 28}, pix),
			"test_labels.npy": npyBytes("|u1", []int{len(rows), 14}, lb)})
	}
	out["medmnist"] = replica{"/records/10519652/files/breastmnist.npz": npz([]int64{0, 1, 1}),
		"/records/10519652/files/organamnist.npz": npz([]int64{0, 5, 10}),
		"/records/10519652/files/chestmnist.npz":  multiHot([][14]byte{{1, 0, 1}, {}, {0, 1}})}

	chest := map[string][]byte{"__MACOSX/chest_xray/._x": []byte("junk")}
	for _, c := range []string{"NORMAL", "PNEUMONIA"} {
		chest["CellData/chest_xray/test/"+c+"/a.jpeg"] = img
		chest["CellData/chest_xray/train/"+c+"/b.jpeg"] = img
	}
	oct := map[string][]byte{}
	for _, c := range []string{"CNV", "DME", "DRUSEN", "NORMAL"} {
		for i := range 3 {
			oct[fmt.Sprintf("OCT2017/test/%s/%d.jpeg", c, i)] = img
			oct[fmt.Sprintf("OCT2017/train/%s/%d.jpeg", c, i)] = img
		}
	}
	out["kermany"] = replica{
		"/public-files/datasets/rscbjbr9sj/files/f12eaf6d-6023-432f-acc9-80c9d7393433/file_downloaded": makeZip(t, chest),
		"/public-files/datasets/rscbjbr9sj/files/5699a1d8-d1b6-45db-bb92-b61051445347/file_downloaded": makeTarGz(t, oct)}

	dr := map[string][]byte{"DeepDRiD-1.1/regular_fundus_images/regular-fundus-validation/regular-fundus-validation.csv": []byte(
		"patient_id,image_id,image_path,Overall quality,left_eye_DR_Level,right_eye_DR_Level,patient_DR_Level\n" +
			"265,265_l1,\\x,0,3,,4\n265,265_r1,\\x,1,,4,4\n266,266_l1,\\x,1,0,,1\n")}
	for _, id := range []string{"265/265_l1", "265/265_r1", "266/266_l1"} {
		dr["DeepDRiD-1.1/regular_fundus_images/regular-fundus-validation/Images/"+id+".jpg"] = img
	}
	out["deepdrid"] = replica{"/records/8248825/files/deepdrdoc/DeepDRiD-v1.1.zip": makeZip(t, dr)}

	pad := replica{"/public-files/datasets/zr7vgbcyr2/files/fa850265-57da-48f0-ba3e-998b3e44b1f6/file_downloaded": []byte(
		"patient_id,img_id,diagnostic\nPAT_1,PAT_1_1.png,BCC\nPAT_2,PAT_2_2.png,NEV\nPAT_3,PAT_3_3.png,SEK\n")}
	for i, id := range []string{"1cc2f71f-20a2-412d-b746-a9b9bc20c966", "559a60ed-5504-475d-996c-6a8bc253b5e7", "34dcdf8e-e5f1-4b35-aa0b-5135051ff852"} {
		pad["/public-files/datasets/zr7vgbcyr2/files/"+id+"/file_downloaded"] = makeZip(t, map[string][]byte{
			fmt.Sprintf("imgs_part_%d/PAT_%d_%d.png", i+1, i+1, i+1): pngOf(t, 5, 5, color.Gray{Y: 10})})
	}
	out["pad-ufes-20"] = pad

	cells := map[string][]byte{}
	for _, ph := range []string{"G1", "S", "G2", "Prophase", "Metaphase", "Anaphase", "Telophase"} {
		cells["CellCycle/"+ph+"/1_Ch3.tif"] = tiff16(t)
		cells["CellCycle/"+ph+"/1_Ch6.tif"] = tiff16(t)
	}
	out["bbbc048"] = replica{"/bbbc/BBBC048/BBBC048v1.zip": makeZip(t, map[string][]byte{"CellCycle.zip": makeZip(t, cells)})}

	// Image-folder archives: one image per class, under the top folders
	// the publishers use.
	folders := func(prefix, ext string, data []byte, classes ...string) map[string][]byte {
		m := map[string][]byte{}
		for _, c := range classes {
			m[prefix+c+"/x"+ext] = data
		}
		return m
	}
	tif := tiffRGB(t)
	out["malaria-cells"] = replica{"/public/Malaria/cell_images.zip": makeZip(t, folders("cell_images/", ".png", pngOf(t, 4, 4, color.Gray{Y: 1}), "Parasitized", "Uninfected"))}
	out["nct-crc-he"] = replica{
		"/records/1214456/files/CRC-VAL-HE-7K.zip":   makeZip(t, folders("CRC-VAL-HE-7K/", ".tif", tif, "ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM")),
		"/records/1214456/files/NCT-CRC-HE-100K.zip": makeZip(t, folders("NCT-CRC-HE-100K/", ".tif", tif, "ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"))}
	out["kather2016"] = replica{"/records/53169/files/Kather_texture_2016_image_tiles_5000.zip": makeZip(t, folders("Kather_texture_2016_image_tiles_5000/", ".tif", tif,
		"01_TUMOR", "02_STROMA", "03_COMPLEX", "04_LYMPHO", "05_DEBRIS", "06_MUCOSA", "07_ADIPOSE", "08_EMPTY"))}
	bach := folders("ICIAR2018_BACH_Challenge/Photos/", ".tif", tif, "Normal", "Benign", "InSitu", "Invasive")
	bach["ICIAR2018_BACH_Challenge/WSI/A01.svs"] = []byte("not extracted")
	out["bach"] = replica{"/records/3632035/files/ICIAR2018_BACH_Challenge.zip": makeZip(t, bach)}
	breakhis := map[string][]byte{}
	for _, c := range []string{"benign/SOB/adenosis", "benign/SOB/fibroadenoma", "benign/SOB/phyllodes_tumor", "benign/SOB/tubular_adenoma",
		"malignant/SOB/ductal_carcinoma", "malignant/SOB/lobular_carcinoma", "malignant/SOB/mucinous_carcinoma", "malignant/SOB/papillary_carcinoma"} {
		breakhis["BreaKHis_v1/histology_slides/breast/"+c+"/SOB_P1/40X/a.png"] = pngOf(t, 4, 4, color.Gray{Y: 3})
	}
	out["breakhis"] = replica{"/vri/databases/BreaKHis_v1.tar.gz": makeTarGz(t, breakhis)}
	out["acevedo-pbc"] = replica{"/public-files/datasets/snkd93bnjr/files/2fc38728-2ae7-4a62-a857-032af82334c3/file_downloaded": makeZip(t, folders("PBC_dataset_normal_DIB/", ".jpg", img,
		"basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet"))}
	out["ham10000"] = replica{
		"/api/access/datafile/4338392": []byte("lesion_id,image_id,dx\nHAM_1,ISIC_1,nv\nHAM_2,ISIC_2,mel\n"),
		"/api/access/datafile/3172585": makeZip(t, map[string][]byte{"ISIC_1.jpg": img}),
		"/api/access/datafile/3172584": makeZip(t, map[string][]byte{"HAM10000_images_part_2/ISIC_2.jpg": img})}

	// Registration and manual data sets: files placed by hand.
	out["lc25000"] = replica{"{downloads}/LC25000.zip": makeZip(t, folders("lung_colon_image_set/", ".jpeg", img,
		"lung_image_sets/lung_aca", "lung_image_sets/lung_scc", "lung_image_sets/lung_n", "colon_image_sets/colon_aca", "colon_image_sets/colon_n"))}
	covid := folders("COVID-19_Radiography_Dataset/", ".png", pngOf(t, 4, 4, color.Gray{Y: 5}), "COVID/images", "Lung_Opacity/images", "Normal/images", "Viral Pneumonia/images")
	covid["COVID-19_Radiography_Dataset/COVID/masks/x.png"] = pngOf(t, 4, 4, color.Gray{Y: 0})
	out["covid-radiography"] = replica{"{downloads}/covid19-radiography-database.zip": makeZip(t, covid)}
	out["brain-tumor-mri"] = replica{"{downloads}/brain-tumor-mri-dataset.zip": makeZip(t, folders("Testing/", ".jpg", img, "glioma", "meningioma", "notumor", "pituitary"))}
	out["aptos2019"] = replica{"{downloads}/aptos2019-blindness-detection.zip": makeZip(t, map[string][]byte{
		"train.csv": []byte("id_code,diagnosis\nab12,0\ncd34,4\n"), "train_images/ab12.png": pngOf(t, 4, 4, color.Gray{Y: 7}),
		"train_images/cd34.png": pngOf(t, 4, 4, color.Gray{Y: 8}), "test_images/ef56.png": pngOf(t, 4, 4, color.Gray{Y: 9})})}
	out["ddi"] = replica{"{downloads}/ddi.zip": makeZip(t, map[string][]byte{
		"ddidiversedermatologyimages/ddi_metadata.csv": []byte(",DDI_ID,DDI_file,skin_tone,malignant,disease\n0,1,000001.png,56,True,melanoma\n1,2,000002.png,12,False,nevus\n"),
		"ddidiversedermatologyimages/000001.png":       pngOf(t, 4, 4, color.Gray{Y: 1}), "ddidiversedermatologyimages/000002.png": pngOf(t, 4, 4, color.Gray{Y: 2})})}
	sip := replica{}
	for _, c := range []string{"Dyskeratotic", "Koilocytotic", "Metaplastic", "Parabasal", "Superficial-Intermediate"} {
		sip["{downloads}/im_"+c+".zip"] = makeZip(t, map[string][]byte{"im_" + c + "/CROPPED/001_01.bmp": bmpOf(t), "im_" + c + "/001.bmp": bmpOf(t)})
	}
	out["sipakmed"] = sip

	// Hub parquet and WebDataset files, and folders filled by hand.
	var shard bytes.Buffer
	tw := tar.NewWriter(&shard)
	for i, cls := range []string{"0", "1"} {
		for ext, data := range map[string][]byte{"jpg": img, "cls": []byte(cls)} {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("s%03d.%s", i, ext), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
			tw.Write(data)
		}
	}
	tw.Close()
	pcam := replica{}
	for i := range 7 {
		pcam[fmt.Sprintf("/datasets/clip-benchmark/wds_vtab-pcam/resolve/main/test/%d.tar", i)] = shard.Bytes()
	}
	out["pcam"] = pcam
	ubench := replica{}
	for i := range 7 {
		ubench[fmt.Sprintf("/datasets/jnirschl/uBench/resolve/refs%%2Fconvert%%2Fparquet/default/test/%04d.parquet", i)] = parquetOf(t, []ubenchRow{
			{Image: imgCol{Bytes: img}, Modality: "light microscopy", Domain: "pathology", Stain: "H&E", Submodality: "brightfield microscopy"},
			{Image: imgCol{Bytes: img}, Modality: "electron microscopy", Domain: "cell biology", Stain: "none", Submodality: "scanning electron microscopy"}})
	}
	out["ubench"] = ubench
	out["dsad"] = replica{"dsad/single_organ": nil, "dsad/single_organ/liver.parquet": parquetOf(t, []dsadRow{{Image: imgCol{Bytes: img}, Organ: "liver"}, {Image: imgCol{Bytes: img}, Organ: "stomach"}})}
	hela := replica{"hela-2d/raw": nil}
	for _, c := range []string{"actin", "dna", "endosome", "er", "golgi_gia", "golgi_gpp", "lysosome", "microtubules", "mitochondria", "nucleolus"} {
		hela["hela-2d/raw/"+c+"/cell1.tif"] = tiff16(t)
	}
	out["hela-2d"] = hela
	coco, _ := json.Marshal(map[string]any{
		"images":      []map[string]any{{"id": 1, "file_name": "e1.jpg"}},
		"annotations": []map[string]any{{"image_id": 1, "category_id": 2, "bbox": []float64{1, 1, 4, 4}}, {"image_id": 1, "category_id": 5, "bbox": []float64{0, 0, 3, 3}}},
		"categories":  []map[string]any{{"id": 2, "name": "Ascaris lumbricoides"}, {"id": 5, "name": "Taenia spp. egg"}},
	})
	out["parasite-eggs"] = replica{"chula-parasite-egg-11/test/labels.json": coco, "chula-parasite-egg-11/test/e1.jpg": img}
	rsna := map[string][]byte{}
	var table strings.Builder
	table.WriteString("patientId,class\n")
	classes := []string{"Normal", "Lung Opacity", "No Lung Opacity / Not Normal"}
	for i := range 60 {
		id := fmt.Sprintf("patient-%03d", i)
		fmt.Fprintf(&table, "%s,%s\n", id, classes[i%3])
		if i%3 == 1 {
			fmt.Fprintf(&table, "%s,%s\n", id, classes[i%3]) // a second box
		}
		rsna["stage_2_train_images/"+id+".dcm"] = dicom
	}
	rsna["stage_2_detailed_class_info.csv"] = []byte(table.String())
	out["rsna-pneumonia"] = replica{"{downloads}/rsna-pneumonia-detection-challenge.zip": makeZip(t, rsna)}

	lbc := map[string][]byte{}
	for _, f := range []string{"Negative for Intraepithelial malignancy", "Low squamous intra-epithelial lesion", "High squamous intra-epithelial lesion", "Squamous cell carcinoma"} {
		lbc["Liquid based cytology/"+f+"/a.jpg"] = img
	}
	out["pap-smear-lbc"] = replica{"{downloads}/pap-smear-lbc.zip": makeZip(t, lbc)}
	return out
}

// fakeEncoder gives every image and text the same feature: enough to run a
// task through its data reader and label mapping.
type fakeEncoder struct{}

func (fakeEncoder) EncodeImages(_ []float32, n int) ([]float32, error) { return ones(n * 4), nil }
func (fakeEncoder) EncodeTexts(_ []int32, n int) ([]float32, error)    { return ones(n * 4), nil }

func ones(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

func TestShippedRecipesOnReplicas(t *testing.T) {
	dicom := readTestFile(t, "dicom/testdata/MR_small.dcm")
	reps := replicas(t, dicom)
	files := map[string][]byte{}
	for _, r := range reps {
		for p, data := range r {
			if strings.HasPrefix(p, "/") {
				decoded, err := url.PathUnescape(p) // the server sees decoded paths
				if err != nil {
					t.Fatal(err)
				}
				files[decoded] = data
			}
		}
	}
	srv := remotetest.New(files)
	defer srv.Close()
	root := t.TempDir()
	suite, err := tasks.LoadSuiteWith("../../configs/suites/biomedica40.yaml", tasks.LoadOptions{DataRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(root)
	var served []string
	for _, d := range suite.Datasets {
		rep, ok := reps[d.Name]
		if !ok {
			continue
		}
		// The replicas are not the publisher's bytes and hold a handful of
		// images: drop checksums, sizes and counts, keep everything else.
		d.Expect = nil
		for p, data := range rep {
			if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "{downloads}") {
				if data == nil {
					os.MkdirAll(filepath.Join(root, p), 0o755)
				} else {
					writeFileT(t, filepath.Join(root, p), data)
				}
			}
		}
		for i, f := range d.Files {
			d.Files[i].SHA256, d.Files[i].MD5, d.Files[i].Size = "", "", 0
			if f.URL != "" {
				u, _ := url.Parse(f.URL)
				if _, ok := rep[u.EscapedPath()]; !ok {
					t.Fatalf("%s: no replica of %s", d.Name, u.EscapedPath())
				}
				d.Files[i].URL = srv.URL(u.EscapedPath())
			} else if strings.HasPrefix(f.Path, "{downloads}/") {
				writeFileT(t, filepath.Join(root, "downloads", d.Name, strings.TrimPrefix(f.Path, "{downloads}/")), rep[f.Path])
			}
		}
		if r := runOne(t, d, opts); r.Status != Prepared {
			t.Fatalf("%s: %s: %v (missing %v)", d.Name, r.Status, r.Err, r.Missing)
		}
		served = append(served, d.Tasks...)
	}
	if len(served) < 33 {
		t.Fatalf("only %d tasks served by the replicas", len(served))
	}
	env := tasks.Env{
		Encoder:  fakeEncoder{},
		Tokenize: func(texts []string) ([]int32, error) { return make([]int32, len(texts)), nil },
		Image: func(b []byte) ([]float32, error) {
			if _, err := decodeAny(b); err != nil {
				return nil, err
			}
			return ones(3), nil
		},
		Workers: 2,
	}
	for _, task := range suite.Tasks {
		if !slices.Contains(served, task.Name) || task.Kind == tasks.LinearProbe {
			continue
		}
		res, err := tasks.RunTask(context.Background(), task, env)
		if err != nil {
			t.Errorf("task %s on its prepared replica: %v", task.Name, err)
			continue
		}
		if res.Skipped || res.Examples == 0 {
			t.Errorf("task %s: skipped=%v (%s), %d examples", task.Name, res.Skipped, res.Reason, res.Examples)
		}
		t.Logf("%s: %d examples, %d excluded", task.Name, res.Examples, res.Excluded)
	}
}
