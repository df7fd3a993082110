package hub

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Kinds of failure, matched with errors.Is on the errors of this package.
var (
	// ErrRepoNotFound: no such repository, or a private one the token
	// cannot see (the hub does not tell the two apart).
	ErrRepoNotFound = errors.New("repository not found")
	// ErrRevisionNotFound: no such branch, tag or commit.
	ErrRevisionNotFound = errors.New("revision not found")
	// ErrEntryNotFound: the repository has no such file at that revision.
	ErrEntryNotFound = errors.New("file not found in the repository")
	// ErrAccess: a gated repository whose terms the user has not accepted,
	// a missing or rejected token, or another refusal (401/403).
	ErrAccess = errors.New("access denied")
	// ErrNotCached: the file is not in the cache and the hub cannot be
	// asked (offline mode, or the network or hub is down).
	ErrNotCached = errors.New("not in the local cache")
	// ErrChecksum: the downloaded bytes do not match the ETag or size the
	// hub announced; the partial file is deleted.
	ErrChecksum = errors.New("checksum mismatch")
)

// Error is a failed request for one file, with what the hub said.
type Error struct {
	// Kind is one of the Err* values above.
	Kind error
	// Repo, Revision and File name what was asked for.
	Repo, Revision, File string
	// Endpoint is the hub asked.
	Endpoint string
	// Status, Code and Message are the HTTP status and the hub's
	// X-Error-Code and X-Error-Message headers, when it answered.
	Status        int
	Code, Message string
	// TokenSet records whether a token was sent, to say which fix applies.
	TokenSet bool
	// Err is the underlying error (a network failure), if any.
	Err error

	commit string // X-Repo-Commit of a 404 for a missing file
}

// Unwrap exposes Kind and the underlying error to errors.Is and As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Error says what failed and what to do about it.
func (e *Error) Error() string {
	ref := Ref{Repo: e.Repo, Revision: e.Revision}.String()
	page := e.Endpoint + "/" + e.Repo
	status := ""
	if e.Status != 0 {
		status = fmt.Sprintf(" (HTTP %d", e.Status)
		if e.Message != "" {
			status += ": " + e.Message
		}
		status += ")"
	}
	switch e.Kind {
	case ErrRepoNotFound:
		msg := fmt.Sprintf("%s: repository %s not found on %s%s", ref, e.Repo, e.Endpoint, status)
		if e.TokenSet {
			return msg + "; check the name, and that HF_TOKEN's account can see it if it is private"
		}
		return msg + "; check the name; if it is private or gated, set HF_TOKEN to a token of an account with access"
	case ErrRevisionNotFound:
		return fmt.Sprintf("%s: revision %q not found in %s (no such branch, tag or commit)%s", ref, e.Revision, e.Repo, status)
	case ErrEntryNotFound:
		return fmt.Sprintf("%s: file %s not found in the repository at revision %s%s", ref, e.File, e.Revision, status)
	case ErrAccess:
		switch {
		case e.Code == "GatedRepo" && !e.TokenSet:
			return fmt.Sprintf("%s is gated%s: accept its terms at %s and set HF_TOKEN to a token of that account (%s/settings/tokens)", ref, status, page, e.Endpoint)
		case e.Code == "GatedRepo":
			return fmt.Sprintf("%s is gated and HF_TOKEN's account has no access yet%s: accept its terms at %s (access may also await the owners' approval)", ref, status, page)
		case e.Status == http.StatusUnauthorized && e.TokenSet:
			return fmt.Sprintf("%s: %s rejected HF_TOKEN%s: the token is invalid or expired; create one at %s/settings/tokens", ref, e.Endpoint, status, e.Endpoint)
		case e.TokenSet:
			return fmt.Sprintf("%s: access denied%s; check that HF_TOKEN has read access to %s", ref, status, e.Repo)
		default:
			return fmt.Sprintf("%s: access denied%s; if the repository is gated or private, accept its terms at %s and set HF_TOKEN", ref, status, page)
		}
	case ErrChecksum:
		return fmt.Sprintf("%s: %s: %v (the partial download was deleted; run again to download it afresh)", ref, e.File, e.Err)
	case ErrNotCached:
		return fmt.Sprintf("%s: %s: %v", ref, e.File, e.Err)
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", ref, e.File, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v%s", ref, e.File, e.Kind, status)
}

// errUnexpected is the kind of other error statuses (5xx, 429, …).
var errUnexpected = errors.New("unexpected answer from the hub")

// statusError turns a hub error response into an Error.
func (c *Client) statusError(ref Ref, file string, resp *http.Response) *Error {
	e := &Error{Repo: ref.Repo, Revision: ref.Revision, File: file, Endpoint: c.Endpoint,
		Status: resp.StatusCode, Code: resp.Header.Get("X-Error-Code"),
		Message: strings.TrimSpace(resp.Header.Get("X-Error-Message")), TokenSet: c.Token != ""}
	switch {
	case e.Code == "RepoNotFound":
		e.Kind = ErrRepoNotFound
	case e.Code == "RevisionNotFound":
		e.Kind = ErrRevisionNotFound
	case e.Code == "EntryNotFound":
		e.Kind = ErrEntryNotFound
	case e.Code == "GatedRepo" || e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		e.Kind = ErrAccess
	case e.Status == http.StatusNotFound:
		// A mirror without the hub's error codes: say what was asked for.
		e.Kind = ErrEntryNotFound
	default:
		e.Kind = errUnexpected
	}
	return e
}

// transient reports whether retrying (or falling back to the cache) may
// help: no answer at all, or a server error, 408 or 429.
func transient(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return true
	}
	if e.Kind == errNotHub {
		return false
	}
	return e.Status == 0 || e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout
}
