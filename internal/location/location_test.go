package location

import "testing"

func TestResolve(t *testing.T) {
	for _, c := range []struct{ ref, want string }{
		{"", ""},
		{"shards/{000000..000009}.tar", "/cfg/shards/{000000..000009}.tar"},
		{"../data/x.tar", "/data/x.tar"},
		{"/abs/x.tar", "/abs/x.tar"},
		{"http://127.0.0.1:9/x/{000000..000001}.tar", "http://127.0.0.1:9/x/{000000..000001}.tar"},
		{"https://huggingface.co/datasets/a/b/resolve/main/x.tar", "https://huggingface.co/datasets/a/b/resolve/main/x.tar"},
		{"s3://bucket/x.tar", "s3://bucket/x.tar"},
		{"pipe:curl -s http://host/x.tar", "pipe:curl -s http://host/x.tar"},
		{"hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224", "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"},
		{"biomedica:commercial,other", "biomedica:commercial,other"},
		{"biomedica:all@https://mirror/biomedica", "biomedica:all@https://mirror/biomedica"},
		{"biomedica:all@mirror", "biomedica:all@/cfg/mirror"},
		{"biomedica:all@/srv/mirror", "biomedica:all@/srv/mirror"},
		// A colon is an ordinary file-name character; only "scheme://" is a URL.
		{"run:1/x.tar", "/cfg/run:1/x.tar"},
		{"1http://x", "/cfg/1http:/x"},
	} {
		if got := Resolve("/cfg", c.ref); got != c.want {
			t.Errorf("Resolve(%q) = %q, want %q", c.ref, got, c.want)
		}
	}
}

func TestResolveSources(t *testing.T) {
	got := ResolveSources("/cfg", "a/{0..1}.tar::http://h/b.tar::biomedica:other@m")
	want := "/cfg/a/{0..1}.tar::http://h/b.tar::biomedica:other@/cfg/m"
	if got != want {
		t.Errorf("ResolveSources = %q, want %q", got, want)
	}
}

func TestIsLocal(t *testing.T) {
	for ref, want := range map[string]bool{
		"x.tar": true, "/a/b": true, "dir/file:1.tar": true, "C:x": true,
		"http://h/x": false, "HTTPS://h/x": false, "gs://b/x": false, "hf://datasets/x": false,
		"pipe:cat x.tar": false, "biomedica:all": false, "hf-hub:org/name@v1": false,
	} {
		if got := IsLocal(ref); got != want {
			t.Errorf("IsLocal(%q) = %v, want %v", ref, got, want)
		}
	}
}
