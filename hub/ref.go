package hub

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/bmca/bmca/internal/location"
)

// Prefix marks a checkpoint reference to a hub repository, as in
// open_clip.create_model("hf-hub:ORG/NAME"). It is location's, which keeps
// config loading from taking such a reference for a relative path.
const Prefix = location.HFHub

// DefaultRevision is the branch used when a reference names none.
const DefaultRevision = "main"

// Ref is a model repository at a revision.
type Ref struct {
	// Repo is the repository id, ORG/NAME (or NAME for the hub's oldest models).
	Repo string
	// Revision is a branch, tag or commit hash; DefaultRevision when not given.
	Revision string
}

// String is the reference as a user writes it: hf-hub:ORG/NAME[@REVISION].
func (r Ref) String() string {
	if r.Revision == "" || r.Revision == DefaultRevision {
		return Prefix + r.Repo
	}
	return Prefix + r.Repo + "@" + r.Revision
}

// IsRef reports whether s is a hub reference (starts with Prefix). Such a
// string is never a file path (location.IsLocal says the same).
func IsRef(s string) bool { return strings.HasPrefix(s, Prefix) }

// ParseRef parses hf-hub:ORG/NAME[@REVISION].
func ParseRef(s string) (Ref, error) {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return Ref{}, fmt.Errorf("%q is not a hub reference (want %sORG/NAME[@REVISION])", s, Prefix)
	}
	repo, rev, hasRev := strings.Cut(rest, "@")
	if hasRev && rev == "" {
		return Ref{}, fmt.Errorf("%q: empty revision after @ (want %sORG/NAME[@REVISION])", s, Prefix)
	}
	if !hasRev {
		rev = DefaultRevision
	}
	if err := ValidateRepoID(repo); err != nil {
		return Ref{}, fmt.Errorf("%q: %w", s, err)
	}
	if err := validateRevision(rev); err != nil {
		return Ref{}, fmt.Errorf("%q: %w", s, err)
	}
	return Ref{Repo: repo, Revision: rev}, nil
}

var repoIDPattern = regexp.MustCompile(`^([\w\-.]+/)?[\w\-.]+$`)

// ValidateRepoID applies huggingface_hub's rules for repository ids:
// NAME or ORG/NAME of letters, digits, '-', '_' and '.', without "--" or
// "..", at most 96 characters. The rules matter here because the id
// becomes a directory name in the cache.
func ValidateRepoID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty repository id (want ORG/NAME)")
	case len(id) > 96:
		return fmt.Errorf("repository id %q is longer than 96 characters", id)
	case !repoIDPattern.MatchString(id):
		return fmt.Errorf("repository id %q: want ORG/NAME of letters, digits, '-', '_' and '.'", id)
	case strings.Contains(id, "--") || strings.Contains(id, ".."):
		return fmt.Errorf("repository id %q may not contain \"--\" or \"..\"", id)
	case strings.HasPrefix(id, "-") || strings.HasPrefix(id, ".") || strings.HasSuffix(id, ".git"):
		return fmt.Errorf("repository id %q may not start with '-' or '.' or end with .git", id)
	}
	for _, part := range strings.Split(id, "/") {
		if strings.HasPrefix(part, "-") || strings.HasPrefix(part, ".") || strings.HasSuffix(part, "-") || strings.HasSuffix(part, ".") {
			return fmt.Errorf("repository id %q: a part may not start or end with '-' or '.'", id)
		}
	}
	return nil
}

// validateRevision rejects revisions that would escape refs/ in the cache.
func validateRevision(rev string) error {
	for _, part := range strings.Split(rev, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("revision %q: empty, '.' or '..' path element", rev)
		}
	}
	if strings.ContainsAny(rev, "\\\x00") {
		return fmt.Errorf("revision %q contains a backslash or NUL", rev)
	}
	return nil
}

// validateFile rejects file names that would escape the snapshot directory.
func validateFile(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\\x00") {
		return fmt.Errorf("invalid file name %q in a repository", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("invalid file name %q in a repository", name)
		}
	}
	return nil
}

var commitPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)

// isCommit reports whether a revision is a full commit hash, which names
// immutable content: a cached file for it needs no request at all.
func isCommit(rev string) bool { return commitPattern.MatchString(rev) }
