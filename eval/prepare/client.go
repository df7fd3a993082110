package prepare

import (
	"net/http"
	"time"
)

// userAgent names the client: some publishers' servers (Harvard Dataverse)
// refuse requests from generic HTTP libraries' default agents.
const userAgent = "bmca-eval-prepare/1"

// agentTransport sets the User-Agent on every request.
type agentTransport struct{ base http.RoundTripper }

func (t agentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("User-Agent") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", userAgent)
	}
	return t.base.RoundTrip(r)
}

// newClient is the HTTP client prepare uses when none is given: header and
// TLS timeouts (bodies are guarded by data/remote's stall timeout, since a
// 12 GB archive legitimately takes an hour) and the user agent.
func newClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 60 * time.Second
	t.TLSHandshakeTimeout = 20 * time.Second
	return &http.Client{Transport: agentTransport{base: t}}
}
