// Package remotetest serves files over HTTP with injected faults, for
// testing readers that must survive them: connections dropped mid-body,
// 5xx answers, stalls, missing Range support, and a required bearer token.
//
//	srv := remotetest.New(map[string][]byte{"/a.tar": data})
//	defer srv.Close()
//	srv.Fault("/a.tar", remotetest.Fault{DropAfter: 1000, Times: 2})
package remotetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault describes what goes wrong with requests for one path. Each field
// applies to the next Times requests (0 = every request).
type Fault struct {
	// Status, if not 0, is answered instead of the file.
	Status int
	// DropAfter, if > 0, closes the connection after that many body bytes.
	DropAfter int
	// Stall, if > 0, stops sending for this long after DropAfter bytes (or
	// at the start of the body) instead of closing.
	Stall time.Duration
	// Times limits the fault to the next Times requests.
	Times int
}

// Server is an httptest server with faults.
type Server struct {
	*httptest.Server
	// Token, if set, is required as "Authorization: Bearer <Token>".
	Token string
	// NoRange makes the server ignore Range headers (answering 200).
	NoRange bool

	mu       sync.Mutex
	files    map[string][]byte
	faults   map[string]*Fault
	requests map[string]int
	ranges   []string
}

// New serves files by path.
func New(files map[string][]byte) *Server {
	s := &Server{files: files, faults: map[string]*Fault{}, requests: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Put serves data at path from now on, replacing any earlier content.
func (s *Server) Put(path string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = data
}

// Fault sets the fault for path.
func (s *Server) Fault(path string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[path] = &f
}

// Requests returns how many requests path received.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// Ranges returns the Range headers received, in order.
func (s *Server) Ranges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// URL returns the URL of path.
func (s *Server) URL(path string) string { return s.Server.URL + path }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.URL.Path]++
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	data, ok := s.files[r.URL.Path]
	var f Fault
	if p := s.faults[r.URL.Path]; p != nil {
		f = *p
		if p.Times > 0 {
			if p.Times--; p.Times == 0 {
				delete(s.faults, r.URL.Path)
			}
		}
	}
	s.mu.Unlock()

	if s.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.Token {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	if f.Status != 0 {
		http.Error(w, "injected fault", f.Status)
		return
	}
	start, end := 0, len(data)
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" && !s.NoRange {
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
	sum := sha256.Sum256(data)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`) // as Hugging Face's CDN: a content hash
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if f.DropAfter > 0 || f.Stall > 0 {
		n := min(f.DropAfter, len(body))
		w.Write(body[:n])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		if f.Stall > 0 {
			select {
			case <-time.After(f.Stall):
			case <-r.Context().Done():
				return
			}
			w.Write(body[n:])
			return
		}
		// Drop the connection mid-body.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
			}
		}
		return
	}
	w.Write(body)
}
