package checkpoint

import (
	"fmt"
	"strings"

	"github.com/bmca/bmca/internal/location"
)

// localPath checks that a reference Open is given is a local path. A hub
// reference ("hf-hub:ORG/NAME") is resolved to its downloaded directory
// before Open, by the hub client (commands do both in cli.OpenCheckpoint);
// a library caller that passes one gets told so instead of a
// "no such file" error.
func localPath(ref string) (string, error) {
	switch {
	case ref == "":
		return "", fmt.Errorf("no checkpoint given")
	case strings.HasPrefix(ref, location.HFHub):
		return "", fmt.Errorf("%s: a Hugging Face Hub reference must be fetched first (hub.Client.CheckpointPath, as the commands do), then its directory opened", ref)
	case !location.IsLocal(ref):
		return "", fmt.Errorf("%s: a checkpoint must be a local file or directory", ref)
	}
	return ref, nil
}
