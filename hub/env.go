package hub

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bmca/bmca/data/remote"
)

// DefaultEndpoint is the hub's address when HF_ENDPOINT is not set.
const DefaultEndpoint = "https://huggingface.co"

// DefaultProgressMin is the smallest download that gets a progress bar.
const DefaultProgressMin = 10 << 20

// Client downloads from one hub endpoint into one cache. Build it with
// FromEnv to behave as huggingface_hub does; the zero value is not usable.
type Client struct {
	// Endpoint is the hub (or mirror) base URL, without a trailing slash.
	Endpoint string
	// CacheDir is the hub cache ($HF_HUB_CACHE) holding models--ORG--NAME.
	CacheDir string
	// Token is sent as a bearer token to the endpoint's origin only.
	Token remote.Secret
	// Offline answers from the cache only and never connects.
	Offline bool
	// Progress, when set, receives a progress bar for each download of at
	// least ProgressMin bytes (0 = DefaultProgressMin).
	Progress    io.Writer
	ProgressMin int64
	// HTTP sends the requests; nil means a client with connection and
	// header timeouts. Its redirect policy is replaced: the client follows
	// redirects itself, to keep the token on the hub.
	HTTP *http.Client
	// Retry sets the retries of metadata requests and downloads (attempts,
	// backoff, stall timeout); its Token and Client fields are ignored.
	Retry remote.Options
}

// FromEnv builds a client from the environment variables huggingface_hub
// reads, with its defaults and precedence (getenv is os.Getenv outside
// tests; an empty value counts as unset):
//
//   - HF_ENDPOINT: the hub or a mirror (default https://huggingface.co)
//   - HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, where
//     HF_HOME defaults to $XDG_CACHE_HOME/huggingface, else
//     ~/.cache/huggingface ("~" and $VARS are expanded, as Python does)
//   - HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file HF_TOKEN_PATH
//     (default $HF_HOME/token, written by `hf auth login`)
//   - HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE set to 1/ON/YES/TRUE
func FromEnv(getenv func(string) string) (*Client, error) {
	home := func() string {
		if h := getenv("HOME"); h != "" {
			return h
		}
		h, _ := os.UserHomeDir()
		return h
	}
	expand := func(p string) string {
		if p == "~" || strings.HasPrefix(p, "~/") {
			p = filepath.Join(home(), p[1:])
		}
		// Like Python's os.path.expandvars, an unset variable stays as written.
		return os.Expand(p, func(k string) string {
			if v := getenv(k); v != "" {
				return v
			}
			return "$" + k
		})
	}
	or := func(keys ...string) string {
		for _, k := range keys {
			if v := getenv(k); v != "" {
				return v
			}
		}
		return ""
	}
	hfHome := getenv("HF_HOME")
	if hfHome == "" {
		xdg := getenv("XDG_CACHE_HOME")
		if xdg == "" {
			xdg = filepath.Join(home(), ".cache")
		}
		hfHome = filepath.Join(xdg, "huggingface")
	}
	hfHome = expand(hfHome)
	cache := or("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")
	if cache == "" {
		cache = filepath.Join(hfHome, "hub")
	}
	c := &Client{Endpoint: DefaultEndpoint, CacheDir: expand(cache)}
	if e := getenv("HF_ENDPOINT"); e != "" {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("HF_ENDPOINT %q: want an http(s) URL such as %s", e, DefaultEndpoint)
		}
		c.Endpoint = strings.TrimRight(e, "/")
	}
	for _, k := range []string{"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
		switch strings.ToUpper(getenv(k)) {
		case "1", "ON", "YES", "TRUE":
			c.Offline = true
		}
	}
	token := or("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
	if token == "" {
		path := getenv("HF_TOKEN_PATH")
		if path == "" {
			path = filepath.Join(hfHome, "token")
		}
		data, err := os.ReadFile(expand(path))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("hub token file: %w", err)
		default:
			token = string(data)
		}
	}
	c.Token = remote.Secret(strings.TrimSpace(strings.NewReplacer("\r", "", "\n", "").Replace(token)))
	return c, nil
}

// defaultTransport is shared (it pools connections) and never modified.
var defaultTransport = &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	ResponseHeaderTimeout: 60 * time.Second,
	TLSHandshakeTimeout:   20 * time.Second,
	IdleConnTimeout:       90 * time.Second,
}

// httpClient returns the client with a redirect policy that drops the
// token whenever a redirect leaves the endpoint's origin.
func (c *Client) httpClient() *http.Client {
	hc := http.Client{Transport: defaultTransport}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if !c.onHub(req.URL) {
			req.Header.Del("Authorization")
		}
		return nil
	}
	return &hc
}

// onHub reports whether u has the endpoint's origin (scheme, host, port):
// the only place the token may go.
func (c *Client) onHub(u *url.URL) bool {
	e, err := url.Parse(c.Endpoint)
	return err == nil && origin(e) == origin(u)
}

func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + ":" + port
}
