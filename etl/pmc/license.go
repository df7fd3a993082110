package pmc

import (
	"regexp"
	"strings"

	"github.com/bmca/bmca/etl/jats"
)

// Group is a license subset of BIOMEDICA, which is also the name of the
// folder its shards go to.
type Group string

// The three subsets, as BIOMEDICA's gated Hugging Face repository names them.
const (
	// Commercial use allowed: CC0, CC BY, CC BY-SA, CC BY-ND.
	Commercial Group = "commercial"
	// Non-commercial use only: CC BY-NC, CC BY-NC-SA, CC BY-NC-ND.
	Noncommercial Group = "noncommercial"
	// Other: no machine-readable CC license, no license, or a custom one.
	Other Group = "other"
)

// Groups lists the subsets in a fixed order.
var Groups = []Group{Commercial, Noncommercial, Other}

// NoCC is the file list's code for an article without a Creative Commons license.
const NoCC = "NO-CC CODE"

var licenseVersion = regexp.MustCompile(`\s+\d+(\.\d+)?$`)

// GroupOf returns the subset of a license code as the OA file list writes
// it ("CC BY", "CC BY-NC-ND", "CC0", "NO-CC CODE"). Case, repeated spaces,
// a "CC-BY" hyphen and a trailing version ("CC BY 4.0") are forgiven.
func GroupOf(license string) Group {
	switch NormalizeCode(license) {
	case "CC0", "CC BY", "CC BY-SA", "CC BY-ND":
		return Commercial
	case "CC BY-NC", "CC BY-NC-SA", "CC BY-NC-ND":
		return Noncommercial
	}
	return Other
}

// NormalizeCode brings a license code to the file list's spelling.
func NormalizeCode(license string) string {
	s := strings.ToUpper(strings.Join(strings.Fields(license), " "))
	s = licenseVersion.ReplaceAllString(s, "")
	if strings.HasPrefix(s, "CC-BY") {
		s = "CC BY" + s[len("CC-BY"):]
	}
	if s == "CC ZERO" || s == "CC-0" {
		s = "CC0"
	}
	return s
}

var (
	ccURL      = regexp.MustCompile(`creativecommons\.org/licenses/([a-z-]+)`)
	ccZeroURL  = regexp.MustCompile(`creativecommons\.org/publicdomain/zero`)
	ccTypeCode = regexp.MustCompile(`^cc-?(by(?:-?(?:nc|nd|sa))*)`)
)

// LicenseFromArticle derives a file-list license code from what an
// article's XML says, for runs without a file list: the license URL
// (creativecommons.org/licenses/by-nc/3.0 gives "CC BY-NC",
// publicdomain/zero gives "CC0"), else a cc-by… license-type, else the
// license or copyright text ("Creative Commons Attribution-NonCommercial
// License" gives "CC BY-NC"). Anything else, the public domain mark
// included, gives NoCC.
func LicenseFromArticle(l jats.License) string {
	url := strings.ToLower(l.URL)
	if m := ccURL.FindStringSubmatch(url); m != nil {
		if code := ccCode(m[1]); code != "" {
			return code
		}
	}
	if ccZeroURL.MatchString(url) {
		return "CC0"
	}
	if m := ccTypeCode.FindStringSubmatch(strings.ToLower(l.Type)); m != nil {
		if code := ccCode(m[1]); code != "" {
			return code
		}
	}
	for _, text := range []string{l.Text, l.Copyright} {
		if code := licenseFromText(text); code != "" {
			return code
		}
	}
	return NoCC
}

// ccCode turns a URL or type path element ("by-nc-nd", "bync") into a code.
func ccCode(parts string) string {
	p := strings.ReplaceAll(parts, "-", "")
	if !strings.HasPrefix(p, "by") {
		return ""
	}
	p = p[2:]
	code := "CC BY"
	for _, part := range []string{"nc", "nd", "sa"} {
		if strings.HasPrefix(p, part) {
			code += "-" + strings.ToUpper(part)
			p = p[2:]
		}
	}
	if p != "" {
		return ""
	}
	return code
}

var (
	ccTextCode = regexp.MustCompile(`\bcc[ -]?by((?:[ -](?:nc|nd|sa))*)\b`)
	nonComm    = regexp.MustCompile(`non[- ]?commercial`)
	noDerivs   = regexp.MustCompile(`no[- ]?deriv`)
	shareAlike = regexp.MustCompile(`share[- ]?alike`)
)

func licenseFromText(text string) string {
	t := strings.ToLower(strings.Join(strings.Fields(text), " "))
	if t == "" {
		return ""
	}
	if strings.Contains(t, "creativecommons.org/publicdomain/zero") || strings.Contains(t, "cc0") ||
		(strings.Contains(t, "creative commons") && strings.Contains(t, "public domain dedication")) {
		return "CC0"
	}
	if m := ccTextCode.FindStringSubmatch(t); m != nil {
		return ccCode("by" + strings.NewReplacer(" ", "", "-", "").Replace(m[1]))
	}
	if m := ccURL.FindStringSubmatch(t); m != nil {
		if code := ccCode(m[1]); code != "" {
			return code
		}
	}
	if !strings.Contains(t, "creative commons attribution") {
		return ""
	}
	// The clauses follow "Attribution" in CC's names, in the order NC, ND/SA.
	code := "CC BY"
	if nonComm.MatchString(t) {
		code += "-NC"
	}
	switch {
	case noDerivs.MatchString(t):
		code += "-ND"
	case shareAlike.MatchString(t):
		code += "-SA"
	}
	return code
}
