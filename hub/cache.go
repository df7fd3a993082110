package hub

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// repoDir is the cache folder of a model repository, named as
// huggingface_hub's repo_folder_name names it: models--ORG--NAME.
func (c *Client) repoDir(repo string) string {
	return filepath.Join(c.CacheDir, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

// pointerPath is a file's place in the snapshot of a commit.
func (c *Client) pointerPath(repo, commit, file string) string {
	return filepath.Join(c.repoDir(repo), "snapshots", commit, filepath.FromSlash(file))
}

// blobPath is where content with an ETag is stored.
func (c *Client) blobPath(repo, etag string) string {
	return filepath.Join(c.repoDir(repo), "blobs", etag)
}

// lockPath is the lock huggingface_hub takes while writing a blob; taking
// the same one keeps a Go and a Python process from writing it together.
func (c *Client) lockPath(repo, etag string) string {
	return filepath.Join(c.CacheDir, ".locks", "models--"+strings.ReplaceAll(repo, "/", "--"), etag+".lock")
}

// noExistPath marks a file the hub said is absent at a commit.
func (c *Client) noExistPath(repo, commit, file string) string {
	return filepath.Join(c.repoDir(repo), ".no_exist", commit, filepath.FromSlash(file))
}

// commitOf resolves a revision through the cache: a commit hash is its own
// commit, a branch or tag is what refs/<revision> last recorded.
func (c *Client) commitOf(ref Ref) (string, bool) {
	if isCommit(ref.Revision) {
		return ref.Revision, true
	}
	data, err := os.ReadFile(filepath.Join(c.repoDir(ref.Repo), "refs", filepath.FromSlash(ref.Revision)))
	if err != nil {
		return "", false
	}
	commit := strings.TrimSpace(string(data))
	return commit, isCommit(commit)
}

// cacheState is what the cache knows about a file at a revision.
type cacheState int

const (
	unknown cacheState = iota // nothing recorded
	present                   // in the snapshot
	absent                    // recorded as not existing (.no_exist)
)

// lookup finds a file in the cache without any request, as
// huggingface_hub's try_to_load_from_cache does.
func (c *Client) lookup(ref Ref, file string) (File, cacheState) {
	commit, ok := c.commitOf(ref)
	if !ok {
		return File{}, unknown
	}
	p := c.pointerPath(ref.Repo, commit, file)
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return File{Path: p, Commit: commit}, present
	}
	if st, err := os.Stat(c.noExistPath(ref.Repo, commit, file)); err == nil && !st.IsDir() {
		return File{Commit: commit}, absent
	}
	return File{}, unknown
}

// writeRef records the commit a branch or tag resolved to, atomically, and
// only when it changed (the cache may be shared and read-only for others).
func (c *Client) writeRef(ref Ref, commit string) error {
	if ref.Revision == commit {
		return nil
	}
	p := filepath.Join(c.repoDir(ref.Repo), "refs", filepath.FromSlash(ref.Revision))
	if old, err := os.ReadFile(p); err == nil && string(old) == commit {
		return nil
	}
	return atomicWrite(p, []byte(commit))
}

// markAbsent records that file does not exist at commit.
func (c *Client) markAbsent(repo, commit, file string) error {
	p := c.noExistPath(repo, commit, file)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		return err
	}
	return f.Close()
}

// cachedirTag is the Cache Directory Tagging Standard's tag, which backup
// tools honour; huggingface_hub writes the same file.
const cachedirTag = "Signature: 8a477f597d28d172789f06886806bc55\n" +
	"# This file is a cache directory tag created by huggingface_hub.\n" +
	"# For information about cache directory tags, see:\n" +
	"#\thttps://bford.info/cachedir/\n"

// tagCacheDir writes CACHEDIR.TAG once; failing to is harmless.
func (c *Client) tagCacheDir() {
	p := filepath.Join(c.CacheDir, "CACHEDIR.TAG")
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		_ = os.WriteFile(p, []byte(cachedirTag), 0o666)
	}
}

// link points a snapshot entry at its blob with a relative symlink, as
// huggingface_hub does (the cache survives being moved). Where symlinks
// are not available the blob is copied, as huggingface_hub also does.
func link(pointer, blob string) error {
	if err := os.MkdirAll(filepath.Dir(pointer), 0o755); err != nil {
		return err
	}
	absBlob, err := filepath.Abs(blob)
	if err != nil {
		return err
	}
	absDir, err := filepath.Abs(filepath.Dir(pointer))
	if err != nil {
		return err
	}
	target, err := filepath.Rel(absDir, absBlob)
	if err != nil {
		target = absBlob
	}
	if err := os.Remove(pointer); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	err = os.Symlink(target, pointer)
	if err == nil {
		return nil
	}
	if t, lerr := os.Readlink(pointer); lerr == nil && t == target {
		return nil // another process linked it meanwhile
	}
	if !errors.Is(err, os.ErrExist) {
		return copyFile(blob, pointer)
	}
	return err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), ".copy-*")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(out.Name(), dst)
}

// atomicWrite writes a small file through a temporary sibling and a rename,
// so a concurrent reader never sees half of it.
func atomicWrite(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
