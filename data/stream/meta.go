package stream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// MaxMetaValue bounds one kept metadata value; BIOMEDICA's label, license
// and id fields are a few bytes to a few kilobytes.
const MaxMetaValue = 1 << 20

// readMeta scans a JSON object from r and returns the raw values of the
// top-level keys in want. Every other value, such as BIOMEDICA's
// article_text (the whole article, repeated in every sample), is skipped
// as it streams past: its bytes are never held.
func readMeta(r io.Reader, want map[string]bool) (map[string]json.RawMessage, error) {
	br := bufio.NewReaderSize(r, 32<<10)
	sc := jsonScanner{r: br}
	if c, err := sc.nonSpace(); err != nil || c != '{' {
		return nil, sc.errf(err, "want a JSON object")
	}
	out := map[string]json.RawMessage{}
	c, err := sc.nonSpace()
	if err != nil {
		return nil, sc.errf(err, "unterminated object")
	}
	if c == '}' {
		return out, nil
	}
	for {
		if c != '"' {
			return nil, sc.errf(nil, "want a key")
		}
		key, err := sc.str(MaxMetaValue)
		if err != nil {
			return nil, err
		}
		if c, err := sc.nonSpace(); err != nil || c != ':' {
			return nil, sc.errf(err, "want ':' after key %q", key)
		}
		if want[string(key)] {
			var buf bytes.Buffer
			if err := sc.value(&buf, MaxMetaValue); err != nil {
				return nil, fmt.Errorf("key %q: %w", key, err)
			}
			out[string(key)] = buf.Bytes()
		} else if err := sc.value(nil, 0); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		c, err = sc.nonSpace()
		if err != nil {
			return nil, sc.errf(err, "unterminated object")
		}
		if c == '}' {
			return out, nil
		}
		if c != ',' {
			return nil, sc.errf(nil, "want ',' or '}'")
		}
		if c, err = sc.nonSpace(); err != nil {
			return nil, sc.errf(err, "unterminated object")
		}
	}
}

// jsonScanner walks JSON tokens without decoding them. When copying, the
// raw bytes of a value go to a buffer up to a limit; otherwise they are
// dropped as they are read.
type jsonScanner struct {
	r *bufio.Reader
}

var errTooLong = errors.New("metadata value too long")

func (s *jsonScanner) errf(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if err != nil {
		return fmt.Errorf("metadata json: %s: %w", msg, err)
	}
	return fmt.Errorf("metadata json: %s", msg)
}

func (s *jsonScanner) nonSpace() (byte, error) {
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
}

// str reads a string whose opening quote was consumed and returns its raw
// content (escapes kept), failing past limit bytes.
func (s *jsonScanner) str(limit int) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('"')
	if err := s.strBody(&buf, limit); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return b[1 : len(b)-1], nil
}

// strBody consumes a string after its opening quote, through its closing
// one, copying it to dst when dst is not nil. It skips runs of ordinary
// bytes a buffer at a time, which keeps multi-megabyte article texts cheap.
func (s *jsonScanner) strBody(dst *bytes.Buffer, limit int) error {
	for {
		chunk, err := s.r.Peek(max(1, min(s.r.Buffered(), 32<<10)))
		if len(chunk) == 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return s.errf(err, "unterminated string")
		}
		i := bytes.IndexAny(chunk, "\"\\")
		if i < 0 {
			if dst != nil {
				if dst.Len()+len(chunk) > limit {
					return errTooLong
				}
				dst.Write(chunk)
			}
			s.r.Discard(len(chunk))
			continue
		}
		if dst != nil {
			if dst.Len()+i+2 > limit {
				return errTooLong
			}
			dst.Write(chunk[:i+1])
		}
		esc := chunk[i] == '\\'
		s.r.Discard(i + 1)
		if !esc {
			return nil
		}
		c, err := s.r.ReadByte() // the escaped character; \uXXXX digits are ordinary bytes
		if err != nil {
			return s.errf(io.ErrUnexpectedEOF, "unterminated escape")
		}
		if dst != nil {
			dst.WriteByte(c)
		}
	}
}

// value consumes one JSON value whose first byte has not been read yet.
func (s *jsonScanner) value(dst *bytes.Buffer, limit int) error {
	c, err := s.nonSpace()
	if err != nil {
		return s.errf(err, "want a value")
	}
	depth := 0
	for {
		if dst != nil {
			if dst.Len() >= limit {
				return errTooLong
			}
			dst.WriteByte(c)
		}
		switch c {
		case '"':
			if err := s.strBody(dst, limit); err != nil {
				return err
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth < 0 {
				return s.errf(nil, "unbalanced %q", c)
			}
		}
		if depth == 0 && c != '{' && c != '[' {
			if c == '"' || c == '}' || c == ']' {
				return nil
			}
			// A number, true, false or null: it ends before the next
			// delimiter, which stays unread.
			next, err := s.r.Peek(1)
			if err != nil || strings.IndexByte(",}] \t\r\n", next[0]) >= 0 {
				return nil
			}
		}
		if c, err = s.r.ReadByte(); err != nil {
			return s.errf(io.ErrUnexpectedEOF, "unterminated value")
		}
	}
}

// Filter selects samples by their json metadata before any image is
// decoded (BIOMEDICA's fields; see notes/biomedica.md). Empty lists impose
// nothing. A sample whose json lacks a field that a filter needs is
// dropped as ReasonNoMeta. Its YAML keys are those of a run config's
// data.filter section.
type Filter struct {
	// Licenses keeps samples whose article_license is in one of the listed
	// groups: "commercial" (CC0, CC BY, CC BY-SA, CC BY-ND),
	// "noncommercial" (CC BY-NC, CC BY-NC-SA, CC BY-NC-ND), "other"
	// (anything else), or an exact license string such as "CC BY".
	Licenses []string `yaml:"licenses"`
	// IncludePrimary keeps samples with at least one of these
	// image_primary_label values (e.g. "Clinical Imaging", "Microscopy"
	// for the concept-filtered BMC-CLIP variant). Labels compare
	// case-insensitively.
	IncludePrimary []string `yaml:"include_primary"`
	// ExcludePrimary drops samples with any of these image_primary_label
	// values.
	ExcludePrimary []string `yaml:"exclude_primary"`
	// IncludeSecondary keeps samples with at least one of these
	// image_secondary_label values (e.g. "x-ray radiography", "bar plot").
	IncludeSecondary []string `yaml:"include_secondary"`
	// ExcludeSecondary drops samples with any of these
	// image_secondary_label values.
	ExcludeSecondary []string `yaml:"exclude_secondary"`
	// PanelTypes keeps samples whose image_panel_type is listed
	// ("single", "multiple").
	PanelTypes []string `yaml:"panel_types"`
	// ClusterCap keeps at most this many samples per image_label_id (the
	// k-means cluster) per epoch, in stream order: concept balancing by
	// capping the large clusters (0 = no cap).
	ClusterCap int `yaml:"cluster_cap"`
	// ClusterWeights keeps a sample of cluster c with probability
	// min(1, ClusterWeights[c]) (clusters not listed: DefaultClusterWeight),
	// decided by a hash of the seed and the sample key, so that the same
	// samples are kept whatever the worker count, and on resume:
	// concept balancing by reweighting.
	ClusterWeights map[string]float64 `yaml:"cluster_weights"`
	// DefaultClusterWeight is the keep probability of clusters missing from
	// ClusterWeights (0 = 1, keep).
	DefaultClusterWeight float64 `yaml:"default_cluster_weight"`
}

// Metadata fields the filters read.
const (
	fieldLicense   = "article_license"
	fieldPrimary   = "image_primary_label"
	fieldSecondary = "image_secondary_label"
	fieldPanel     = "image_panel_type"
	fieldCluster   = "image_label_id"
)

// licenseGroups are BIOMEDICA's three license subsets (ETL
// 01_download_filelists.py).
var licenseGroups = map[string][]string{
	"commercial":    {"CC0", "CC BY", "CC BY-SA", "CC BY-ND"},
	"noncommercial": {"CC BY-NC", "CC BY-NC-SA", "CC BY-NC-ND"},
}

// fields lists the metadata keys the filter reads.
func (f Filter) fields() []string {
	var out []string
	add := func(cond bool, k string) {
		if cond {
			out = append(out, k)
		}
	}
	add(len(f.Licenses) > 0, fieldLicense)
	add(len(f.IncludePrimary)+len(f.ExcludePrimary) > 0, fieldPrimary)
	add(len(f.IncludeSecondary)+len(f.ExcludeSecondary) > 0, fieldSecondary)
	add(len(f.PanelTypes) > 0, fieldPanel)
	add(f.ClusterCap > 0 || f.ClusterWeights != nil || f.DefaultClusterWeight != 0, fieldCluster)
	return out
}

// Validate reports a filter that cannot apply, naming the field by its
// YAML key.
func (f Filter) Validate() error {
	for _, l := range f.Licenses {
		if l == "" {
			return errors.New("licenses: an entry is empty")
		}
	}
	if f.ClusterCap < 0 {
		return fmt.Errorf("cluster_cap: must be ≥ 0 (0 = no cap), got %d", f.ClusterCap)
	}
	for _, c := range slices.Sorted(maps.Keys(f.ClusterWeights)) {
		if w := f.ClusterWeights[c]; !(w >= 0) {
			return fmt.Errorf("cluster_weights: %q must be ≥ 0, got %v", c, w)
		}
	}
	if !(f.DefaultClusterWeight >= 0) {
		return fmt.Errorf("default_cluster_weight: must be ≥ 0, got %v", f.DefaultClusterWeight)
	}
	return nil
}

// metaString decodes a string field (numbers are accepted as their text,
// since some dumps write cluster ids as numbers).
func metaString(meta map[string]json.RawMessage, key string) (string, bool) {
	raw, ok := meta[key]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}

// metaList decodes a list-of-strings field; a lone string counts as a
// one-element list.
func metaList(meta map[string]json.RawMessage, key string) ([]string, bool) {
	raw, ok := meta[key]
	if !ok {
		return nil, false
	}
	var l []string
	if json.Unmarshal(raw, &l) == nil {
		return l, true
	}
	if s, ok := metaString(meta, key); ok {
		return []string{s}, true
	}
	return nil, false
}

func containsFold(list []string, v string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(strings.TrimSpace(x), strings.TrimSpace(v)) })
}

func anyFold(list, vals []string) bool {
	return slices.ContainsFunc(vals, func(v string) bool { return containsFold(list, v) })
}

// keep applies the stateless filters and returns the reason a sample is
// dropped ("" = keep). The cluster cap is stateful and applied by the
// merger, in stream order.
func (f Filter) keep(meta map[string]json.RawMessage, key string, seed uint64) Reason {
	if len(f.Licenses) > 0 {
		lic, ok := metaString(meta, fieldLicense)
		if !ok {
			return ReasonNoMeta
		}
		if !licenseAllowed(f.Licenses, lic) {
			return ReasonLicense
		}
	}
	if len(f.IncludePrimary)+len(f.ExcludePrimary) > 0 {
		labels, ok := metaList(meta, fieldPrimary)
		if !ok {
			return ReasonNoMeta
		}
		if (len(f.IncludePrimary) > 0 && !anyFold(f.IncludePrimary, labels)) || anyFold(f.ExcludePrimary, labels) {
			return ReasonLabel
		}
	}
	if len(f.IncludeSecondary)+len(f.ExcludeSecondary) > 0 {
		labels, ok := metaList(meta, fieldSecondary)
		if !ok {
			return ReasonNoMeta
		}
		if (len(f.IncludeSecondary) > 0 && !anyFold(f.IncludeSecondary, labels)) || anyFold(f.ExcludeSecondary, labels) {
			return ReasonLabel
		}
	}
	if len(f.PanelTypes) > 0 {
		p, ok := metaString(meta, fieldPanel)
		if !ok {
			return ReasonNoMeta
		}
		if !containsFold(f.PanelTypes, p) {
			return ReasonPanel
		}
	}
	if f.ClusterWeights != nil || f.DefaultClusterWeight != 0 || f.ClusterCap > 0 {
		c, ok := metaString(meta, fieldCluster)
		if !ok {
			return ReasonNoMeta
		}
		if f.ClusterWeights != nil || f.DefaultClusterWeight != 0 {
			w, listed := f.ClusterWeights[c]
			if !listed {
				w = f.DefaultClusterWeight
				if w == 0 {
					w = 1
				}
			}
			// A uniform draw in [0, 1) fixed by (seed, key).
			u := float64(hashKey(seed, key)>>11) / (1 << 53)
			if u >= w {
				return ReasonClusterWeight
			}
		}
	}
	return ""
}

// licenseAllowed matches a license string against groups and exact names.
func licenseAllowed(allowed []string, lic string) bool {
	lic = strings.TrimSpace(lic)
	for _, a := range allowed {
		switch a {
		case "commercial", "noncommercial":
			if containsFold(licenseGroups[a], lic) {
				return true
			}
		case "other":
			if !containsFold(licenseGroups["commercial"], lic) && !containsFold(licenseGroups["noncommercial"], lic) {
				return true
			}
		default:
			if strings.EqualFold(a, lic) {
				return true
			}
		}
	}
	return false
}

// hashKey is a deterministic 64-bit hash of a seed and a sample key:
// FNV-1a over the key, mixed with the seed by splitmix64's finaliser.
func hashKey(seed uint64, key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return mix64(h ^ mix64(seed))
}

// mix64 is splitmix64's finaliser.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
