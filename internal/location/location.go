// Package location decides, once for every config and suite file, what a
// reference names: a local file path, or something that is not a path at
// all — an http(s) URL, a WebDataset "pipe:" command, a "biomedica:"
// shard spec or an "hf-hub:" model reference. Only local paths are
// resolved against the directory of the file that names them, so a config
// works from any working directory and a URL is never turned into one.
//
//	location.Resolve("/runs", "shards/{0..9}.tar")           // "/runs/shards/{0..9}.tar"
//	location.Resolve("/runs", "https://host/x/{0..9}.tar")   // unchanged
//	location.ResolveSources("/runs", "a.tar::biomedica:all@mirror")
//	                                           // "/runs/a.tar::biomedica:all@/runs/mirror"
package location

import (
	"path/filepath"
	"strings"
)

// SourceSeparator joins several shard sources in one string, as OpenCLIP's
// --train-data does.
const SourceSeparator = "::"

// Prefixes of the references that are not local paths, besides any
// "scheme://" URL.
const (
	// Pipe is WebDataset's shell-command source ("pipe:curl -s URL").
	Pipe = "pipe:"
	// Biomedica is the short spec of the published BIOMEDICA shards
	// ("biomedica:SUBSETS[@BASE]").
	Biomedica = "biomedica:"
	// HFHub names a model repository on the Hugging Face Hub
	// ("hf-hub:ORG/NAME[@REVISION]"), as OpenCLIP does.
	HFHub = "hf-hub:"
)

// IsLocal reports whether ref is a local file path (or pattern): not a
// "scheme://" URL, and not a pipe:, biomedica: or hf-hub: reference. A
// colon elsewhere ("run:1/x.tar") is an ordinary file-name character.
func IsLocal(ref string) bool {
	if strings.HasPrefix(ref, Pipe) || strings.HasPrefix(ref, Biomedica) || strings.HasPrefix(ref, HFHub) {
		return false
	}
	return !IsURL(ref)
}

// IsURL reports whether ref starts with an RFC 3986 scheme followed by
// "://" (http, https, s3, …).
func IsURL(ref string) bool {
	scheme, _, ok := strings.Cut(ref, "://")
	if !ok || scheme == "" {
		return false
	}
	for i, c := range scheme {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// Resolve returns ref with a relative local path joined to dir. Empty
// references, absolute paths and references that are not paths are
// returned unchanged, except that the BASE of a "biomedica:SUBSETS@BASE"
// spec is itself resolved (a local mirror may be named relative to the
// file).
func Resolve(dir, ref string) string {
	if strings.HasPrefix(ref, Biomedica) {
		spec, base, ok := strings.Cut(ref, "@")
		if !ok || base == "" {
			return ref
		}
		return spec + "@" + Resolve(dir, base)
	}
	if ref == "" || filepath.IsAbs(ref) || !IsLocal(ref) {
		return ref
	}
	return filepath.Join(dir, ref)
}

// ResolveSources resolves each "::"-separated source of a shard spec.
func ResolveSources(dir, spec string) string {
	parts := strings.Split(spec, SourceSeparator)
	for i, p := range parts {
		parts[i] = Resolve(dir, p)
	}
	return strings.Join(parts, SourceSeparator)
}
