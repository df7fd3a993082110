package prepare

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/eval/tasks"
)

// TestUnpackOptions: From re-roots at a folder however deep the publisher
// nested it, Flatten gathers split image folders, Include selects members,
// and members that would escape the target are refused.
func TestUnpackOptions(t *testing.T) {
	root := t.TempDir()
	files := map[string][]byte{
		"ZhangLabData/CellData/chest_xray/test/NORMAL/a.jpeg":     []byte("a"),
		"ZhangLabData/CellData/chest_xray/train/PNEUMONIA/b.jpeg": []byte("b"),
		"ZhangLabData/OCT2017 /test/CNV/c.jpeg":                   []byte("c"),
		"imgs_part_1/PAT_1.png":                                   []byte("p1"),
		"imgs_part_2/sub/PAT_2.png":                               []byte("p2"),
		"__MACOSX/imgs_part_1/._PAT_1.png":                        []byte("junk"),
	}
	writeFileT(t, filepath.Join(root, "a.zip"), makeZip(t, files))
	writeFileT(t, filepath.Join(root, "a.tgz"), makeTarGz(t, files))
	e := &env{opts: testOptions(root).withDefaults(), log: io.Discard}
	for _, archive := range []string{"a.zip", "a.tgz"} {
		out := strings.TrimSuffix(archive, filepath.Ext(archive))
		steps := []tasks.UnpackStep{
			{Archive: archive, To: out + "/kermany/chest_xray", From: "chest_xray"},
			{Archive: archive, To: out + "/kermany/OCT2017", From: "OCT2017"},
			{Archive: archive, To: out + "/pad/images", Include: []string{"imgs_part_*/**/*.png"}, Flatten: true},
		}
		for _, s := range steps {
			if err := e.unpack(t.Context(), &s); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []string{"kermany/chest_xray/test/NORMAL/a.jpeg", "kermany/chest_xray/train/PNEUMONIA/b.jpeg", "kermany/OCT2017/test/CNV/c.jpeg", "pad/images/PAT_1.png", "pad/images/PAT_2.png"} {
			if _, err := os.Stat(filepath.Join(root, out, want)); err != nil {
				t.Errorf("%s: %s not extracted", archive, want)
			}
		}
		if n, _ := glob(filepath.Join(root, out), "pad/images/*"); len(n) != 2 {
			t.Errorf("%s: pad/images holds %v, want the two images and no resource fork", archive, n)
		}
	}
	writeFileT(t, filepath.Join(root, "evil.zip"), makeZip(t, map[string][]byte{"../../evil.txt": []byte("x")}))
	if err := e.unpack(t.Context(), &tasks.UnpackStep{Archive: "evil.zip", To: "x"}); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("path traversal: %v", err)
	}
}

// TestTableLabelFallbackAndClassRoot: "a|b" labels take the first
// non-empty column; labelled class folders are found below a root.
func TestTableLabelFallbackAndClassRoot(t *testing.T) {
	root := t.TempDir()
	writeFileT(t, filepath.Join(root, "dr/Images/1/1_l1.jpg"), []byte("x"))
	writeFileT(t, filepath.Join(root, "dr/Images/1/1_r1.jpg"), []byte("y"))
	writeFileT(t, filepath.Join(root, "dr/val.csv"), []byte("patient_id,image_id,left_eye_DR_Level,right_eye_DR_Level\n1,1_l1,3,\n1,1_r1,,4\n"))
	e := &env{opts: testOptions(root).withDefaults(), log: io.Discard}
	if err := e.table(t.Context(), &tasks.TableStep{In: "dr/val.csv", Out: "deepdrid/test.csv", Path: "Images/{patient_id}/{image_id}.jpg", Label: "left_eye_DR_Level|right_eye_DR_Level"}); err != nil {
		t.Fatal(err)
	}
	_, rows, err := readTable(filepath.Join(root, "deepdrid/test.csv"))
	if err != nil || len(rows) != 2 || rows[0][1] != "3" || rows[1][1] != "4" || rows[0][0] != "../dr/Images/1/1_l1.jpg" {
		t.Fatalf("rows %v (%v)", rows, err)
	}
	writeFileT(t, filepath.Join(root, "lbc/v2/data/Squamous cell carcinoma/a.jpg"), []byte("x"))
	writeFileT(t, filepath.Join(root, "lbc/v2/data/Negative for Intraepithelial malignancy/b.jpg"), []byte("x"))
	got, err := classRoot(filepath.Join(root, "lbc"), map[string]string{"Squamous cell carcinoma": "SCC", "Negative for Intraepithelial malignancy": "NILM"})
	if err != nil || got != filepath.Join(root, "lbc/v2/data") {
		t.Errorf("classRoot = %q, %v", got, err)
	}
	if _, err := classRoot(filepath.Join(root, "lbc"), map[string]string{"HSIL folder": "HSIL"}); err == nil {
		t.Error("classRoot found a folder that is not there")
	}
}
