package stream

import (
	"strings"
	"testing"
)

// TestExpandSourceRefusesWhatItCannotRead checks that sources bmca does not
// stream fail with a message that says what to use instead, rather than as
// a missing local file.
func TestExpandSourceRefusesWhatItCannotRead(t *testing.T) {
	for src, want := range map[string]string{
		"pipe:curl -s https://host/x.tar": "pipe: commands are not run",
		"s3://bucket/x-{0..3}.tar":        "only http:// and https:// URLs",
	} {
		_, err := ExpandSource(src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ExpandSource(%q) = %v, want an error containing %q", src, err, want)
		}
	}
	urls, err := ExpandSource("https://host/x/{000000..000002}.tar")
	if err != nil || len(urls) != 3 || urls[2] != "https://host/x/000002.tar" {
		t.Errorf("https brace range: %v, %v", urls, err)
	}
}
