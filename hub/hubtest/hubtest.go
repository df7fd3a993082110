// Package hubtest serves a local replica of the Hugging Face Hub's file
// URLs, for tests of code that downloads from the hub: it answers
// HEAD and GET on /{repo}/resolve/{revision}/{file} with the headers the
// hub sends (X-Repo-Commit, ETag, X-Linked-Etag, X-Linked-Size, X-Error-Code),
// redirects Git LFS files to a separate "CDN" server with a signed URL as
// the hub does, serves Range requests, and answers 401/403/404 for gated,
// private-or-missing repositories, unknown revisions and missing files.
// Faults (dropped connections, error statuses) can be injected, and every
// request is logged with the Authorization header it carried.
//
//	srv := hubtest.New()
//	defer srv.Close()
//	commit := srv.Push("org/tiny", map[string][]byte{"open_clip_config.json": cfg, "open_clip_model.safetensors": w})
//	os.Setenv("HF_ENDPOINT", srv.URL())
package hubtest

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Fault makes the next Times content downloads of one file fail (0 =
// every download). Content downloads are the GETs that return the bytes:
// on the CDN for LFS files, on the resolve URL for files stored in Git.
type Fault struct {
	// Status, if not 0, is answered instead of the content.
	Status int
	// DropAfter, if > 0, closes the connection after that many body bytes.
	DropAfter int
	// Times limits the fault to the next Times downloads.
	Times int
}

// Request is one request a server received.
type Request struct {
	// Server is "hub" (the endpoint) or "cdn" (LFS storage).
	Server string
	// Method is HEAD or GET.
	Method string
	// Path is the URL path, still escaped.
	Path string
	// Range is the Range header, if any.
	Range string
	// Authorization is the Authorization header as received.
	Authorization string
}

// Server is a hub endpoint and its CDN, two servers on different ports (so
// different origins: a token must never reach the CDN).
type Server struct {
	hub, cdn *httptest.Server
	secret   []byte

	mu      sync.Mutex
	repos   map[string]*repo
	renamed map[string]string
	tokens  map[string]bool
	faults  map[string]*Fault
	down    bool
	log     []Request
}

type repo struct {
	commits map[string]map[string][]byte // commit → file → content
	sums    map[string]map[string]string // commit → file → sha256, hex
	refs    map[string]string            // branch or tag → commit
	gated   bool
	access  map[string]bool // tokens that accepted a gated repo's terms
}

// New starts the two servers.
func New() *Server {
	s := &Server{secret: []byte("hubtest"), repos: map[string]*repo{}, renamed: map[string]string{},
		tokens: map[string]bool{}, faults: map[string]*Fault{}}
	s.hub = httptest.NewServer(http.HandlerFunc(s.serveHub))
	s.cdn = httptest.NewServer(http.HandlerFunc(s.serveCDN))
	return s
}

// Close stops both servers; later requests fail to connect, as when the
// network is down.
func (s *Server) Close() {
	s.hub.Close()
	s.cdn.Close()
}

// URL is the endpoint to use as HF_ENDPOINT.
func (s *Server) URL() string { return s.hub.URL }

// CDNURL is the LFS storage server's base URL.
func (s *Server) CDNURL() string { return s.cdn.URL }

// AddToken makes token a valid user token. Requests with any other
// Authorization header are refused with 401, as the hub refuses an invalid
// or expired token.
func (s *Server) AddToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = true
}

// Push adds a commit holding exactly files to repo (created if new) and
// moves its main branch there. It returns the commit hash.
func (s *Server) Push(id string, files map[string][]byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[id]
	if r == nil {
		r = &repo{commits: map[string]map[string][]byte{}, sums: map[string]map[string]string{}, refs: map[string]string{}, access: map[string]bool{}}
		s.repos[id] = r
	}
	h := sha1.New()
	fmt.Fprintf(h, "repo %s\nparent %s\n", id, r.refs["main"])
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	copied, sums := map[string][]byte{}, map[string]string{}
	for _, n := range names {
		fmt.Fprintf(h, "%s %s\n", n, GitBlobID(files[n]))
		copied[n] = slices.Clone(files[n])
		sum := sha256.Sum256(files[n])
		sums[n] = hex.EncodeToString(sum[:])
	}
	commit := hex.EncodeToString(h.Sum(nil))
	r.commits[commit], r.sums[commit] = copied, sums
	r.refs["main"] = commit
	return commit
}

// Tag names a commit of repo (a tag or another branch).
func (s *Server) Tag(id, name, commit string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[id].refs[name] = commit
}

// Gate makes repo gated: only the listed tokens (which AddToken must also
// have made valid) have accepted its terms.
func (s *Server) Gate(id string, tokens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[id]
	r.gated = true
	for _, t := range tokens {
		r.access[t] = true
	}
}

// Rename moves a repo; requests for the old name are redirected, as the
// hub does after a rename.
func (s *Server) Rename(from, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[to] = s.repos[from]
	delete(s.repos, from)
	s.renamed[from] = to
}

// Fault sets the fault for the content downloads of file in repo.
func (s *Server) Fault(id, file string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[id+"/"+file] = &f
}

// Down makes the hub answer 503 to every request (an outage) until called
// with false.
func (s *Server) Down(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Requests returns the requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// IsLFS reports whether the hub stores a file with Git LFS: the file types
// of the hub's default .gitattributes that model repositories use.
func IsLFS(name string) bool {
	switch path.Ext(name) {
	case ".bin", ".safetensors", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".npz", ".gz":
		return true
	}
	return false
}

// GitBlobID is Git's object id of a file: the hub's ETag for files stored
// in Git.
func GitBlobID(data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// lfsPointer is the pointer file Git stores for an LFS file; its blob id is
// the ETag of the hub's redirect response.
func lfsPointer(sha string, size int) []byte {
	return fmt.Appendf(nil, "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", sha, size)
}

func (s *Server) record(server string, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, Request{Server: server, Method: r.Method, Path: r.URL.EscapedPath(),
		Range: r.Header.Get("Range"), Authorization: r.Header.Get("Authorization")})
}

// hubError answers as the hub does: status, X-Error-Code and
// X-Error-Message headers (HEAD responses have no body to read).
func hubError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	http.Error(w, msg, status)
}

// splitResolve parses /{repo}/resolve/{revision}/{file...}; repo is one or
// two segments.
func splitResolve(escaped string) (id, rev, file string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	for i := 1; i <= 2 && i+2 < len(parts); i++ {
		if parts[i] != "resolve" {
			continue
		}
		unescape := func(p []string) (string, bool) {
			out := make([]string, len(p))
			for j, x := range p {
				u, err := url.PathUnescape(x)
				if err != nil {
					return "", false
				}
				out[j] = u
			}
			return strings.Join(out, "/"), true
		}
		id, ok1 := unescape(parts[:i])
		rev, ok2 := unescape(parts[i+1 : i+2])
		file, ok3 := unescape(parts[i+2:])
		return id, rev, file, ok1 && ok2 && ok3
	}
	return "", "", "", false
}

func (s *Server) serveHub(w http.ResponseWriter, r *http.Request) {
	s.record("hub", r)
	if r.Method != http.MethodHead && r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id, rev, file, ok := splitResolve(r.URL.EscapedPath())
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	down := s.down
	to, moved := s.renamed[id]
	rp := s.repos[id]
	token, hasToken := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	validToken := hasToken && s.tokens[token]
	var files map[string][]byte
	var sums map[string]string
	commit := ""
	if rp != nil {
		commit = rev
		if c, isRef := rp.refs[rev]; isRef {
			commit = c
		}
		files, sums = rp.commits[commit], rp.sums[commit]
	}
	granted := rp != nil && (!rp.gated || rp.access[token])
	s.mu.Unlock()

	switch {
	case down:
		hubError(w, http.StatusServiceUnavailable, "", "Service Unavailable")
	case r.Header.Get("Authorization") != "" && !validToken:
		hubError(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
	case moved:
		target := "/" + to + "/resolve/" + url.PathEscape(rev) + "/" + escapeFile(file)
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusTemporaryRedirect)
	case rp == nil && !hasToken:
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found")
	case rp == nil:
		hubError(w, http.StatusNotFound, "RepoNotFound", "Repository not found")
	case !granted && !hasToken:
		hubError(w, http.StatusUnauthorized, "GatedRepo",
			fmt.Sprintf("Access to model %s is restricted. You must have access to it and be authenticated to access it. Please log in.", id))
	case !granted:
		hubError(w, http.StatusForbidden, "GatedRepo",
			fmt.Sprintf("Access to model %s is restricted and you are not in the authorized list. Visit %s/%s to ask for access.", id, s.URL(), id))
	case files == nil:
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
	default:
		data, exists := files[file]
		w.Header().Set("X-Repo-Commit", commit)
		switch {
		case !exists:
			hubError(w, http.StatusNotFound, "EntryNotFound", "Entry not found")
		case IsLFS(file):
			sum := sums[file]
			w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
			w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
			w.Header().Set("ETag", `"`+GitBlobID(lfsPointer(sum, len(data)))+`"`)
			w.Header().Set("Location", s.signedURL(id, file, sum))
			w.WriteHeader(http.StatusFound)
		default:
			s.serveContent(w, r, id+"/"+file, data, `"`+GitBlobID(data)+`"`)
		}
	}
}

// signedURL is the CDN address of an LFS object, with a signature the CDN
// checks, like the hub's expiring signed URLs.
func (s *Server) signedURL(id, file, sha string) string {
	p := "/repos/" + sha[:2] + "/" + sha
	q := url.Values{"repo": {id}, "file": {file}, "Signature": {s.sign(p)}}
	return s.cdn.URL + p + "?" + q.Encode()
}

func (s *Server) sign(p string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(p))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	s.record("cdn", r)
	sha := path.Base(r.URL.Path)
	id, file := r.URL.Query().Get("repo"), r.URL.Query().Get("file")
	if !hmac.Equal([]byte(r.URL.Query().Get("Signature")), []byte(s.sign(r.URL.Path))) {
		http.Error(w, "signature mismatch", http.StatusForbidden)
		return
	}
	s.mu.Lock()
	var data []byte
	found := false
	if rp := s.repos[id]; rp != nil {
		for commit, files := range rp.commits {
			if d, ok := files[file]; ok && rp.sums[commit][file] == sha {
				data, found = d, true
			}
		}
	}
	s.mu.Unlock()
	if !found {
		http.NotFound(w, r)
		return
	}
	s.serveContent(w, r, id+"/"+file, data, `"`+sha+`"`)
}

// serveContent answers HEAD and GET (with Range) for data, applying the
// file's fault to GETs.
func (s *Server) serveContent(w http.ResponseWriter, r *http.Request, key string, data []byte, etag string) {
	var f Fault
	if r.Method == http.MethodGet {
		s.mu.Lock()
		if p := s.faults[key]; p != nil {
			f = *p
			if p.Times > 0 {
				if p.Times--; p.Times == 0 {
					delete(s.faults, key)
				}
			}
		}
		s.mu.Unlock()
	}
	if f.Status != 0 {
		http.Error(w, "injected fault", f.Status)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Accept-Ranges", "bytes")
	start, end, status := 0, len(data), http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		spec, _ := strings.CutPrefix(rg, "bytes=")
		a, b, _ := strings.Cut(spec, "-")
		start, _ = strconv.Atoi(a)
		if b != "" {
			e, _ := strconv.Atoi(b)
			end = min(e+1, len(data))
		}
		if start >= len(data) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, len(data)))
		status = http.StatusPartialContent
	}
	body := data[start:end]
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if f.DropAfter > 0 && f.DropAfter < len(body) {
		w.Write(body[:f.DropAfter])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return
	}
	w.Write(body)
}

// escapeFile escapes each segment of a file path, keeping the slashes.
func escapeFile(file string) string {
	parts := strings.Split(file, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}
