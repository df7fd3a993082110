package stream

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// MaxExpansion bounds the names one pattern may expand to, so that a typo
// such as {0..999999999} fails fast instead of exhausting memory.
const MaxExpansion = 1 << 20

// ExpandShards turns shard patterns into the list of local shard files, in
// order. Each pattern may join several patterns with "::" (as OpenCLIP's
// --train-data does), use brace expansion as Python's braceexpand does
// (shard-{000000..000009}.tar keeps the zero padding, {a,b} lists
// alternatives, several braces multiply, {0..10..2} steps), and then glob
// characters (* ? [) expanded against the file system in lexical order.
// Every name must exist: a pattern that matches nothing is an error naming
// it, so a typo cannot silently shrink the dataset.
func ExpandShards(patterns []string) ([]string, error) {
	var out []string
	for _, joined := range patterns {
		for _, pattern := range strings.Split(joined, "::") {
			if pattern == "" {
				return nil, fmt.Errorf("stream: empty shard pattern in %q", joined)
			}
			names, err := braceExpand(pattern)
			if err != nil {
				return nil, fmt.Errorf("stream: shard pattern %q: %w", pattern, err)
			}
			for _, name := range names {
				files, err := matchFiles(name)
				if err != nil {
					return nil, fmt.Errorf("stream: shard pattern %q: %w", pattern, err)
				}
				out = append(out, files...)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("stream: no shard patterns given")
	}
	return out, nil
}

// matchFiles globs name if it has glob characters, otherwise checks that it
// is an existing regular file.
func matchFiles(name string) ([]string, error) {
	if strings.ContainsAny(name, "*?[") {
		matches, err := filepath.Glob(name)
		if err != nil {
			return nil, fmt.Errorf("glob %q: %w", name, err)
		}
		var files []string
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && !st.IsDir() {
				files = append(files, m)
			}
		}
		if len(files) == 0 {
			// Wrapping fs.ErrNotExist lets callers tell absent shards from
			// malformed patterns.
			return nil, fmt.Errorf("%q matches no file: %w", name, fs.ErrNotExist)
		}
		return files, nil
	}
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a shard", name)
	}
	return []string{name}, nil
}

var (
	intRange  = regexp.MustCompile(`^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$`)
	charRange = regexp.MustCompile(`^([A-Za-z])\.\.([A-Za-z])(?:\.\.(-?\d+))?$`)
)

// braceExpand expands the first top-level brace group of s, then the rest,
// recursively. A group holding neither a top-level comma nor a range stays
// literal, braces included, as in braceexpand.
func braceExpand(s string) ([]string, error) {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		if strings.IndexByte(s, '}') >= 0 {
			return nil, fmt.Errorf("unmatched '}'")
		}
		return []string{s}, nil
	}
	end := matchingBrace(s, open)
	if end < 0 {
		return nil, fmt.Errorf("unmatched '{' at offset %d", open)
	}
	body := s[open+1 : end]
	var items []string
	if alts := splitTopLevel(body); len(alts) > 1 {
		for _, alt := range alts {
			exp, err := braceExpand(alt)
			if err != nil {
				return nil, err
			}
			items = append(items, exp...)
		}
	} else if r, ok, err := expandRange(body); err != nil {
		return nil, err
	} else if ok {
		items = r
	} else {
		inner, err := braceExpand(body)
		if err != nil {
			return nil, err
		}
		for _, x := range inner {
			items = append(items, "{"+x+"}")
		}
	}
	suffixes, err := braceExpand(s[end+1:])
	if err != nil {
		return nil, err
	}
	if len(items)*len(suffixes) > MaxExpansion {
		return nil, fmt.Errorf("expands to more than %d names", MaxExpansion)
	}
	out := make([]string, 0, len(items)*len(suffixes))
	for _, it := range items {
		for _, suf := range suffixes {
			out = append(out, s[:open]+it+suf)
		}
	}
	return out, nil
}

// matchingBrace returns the index of the '}' closing the '{' at open, or -1.
func matchingBrace(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// splitTopLevel splits a brace body at commas outside nested braces.
func splitTopLevel(body string) []string {
	var parts []string
	depth, from := 0, 0
	for i := range len(body) {
		switch body[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, body[from:i])
				from = i + 1
			}
		}
	}
	return append(parts, body[from:])
}

// expandRange expands a brace body of the form x..y or x..y..step: integers (zero-padded to
// the wider end when either end has a leading zero, as braceexpand pads) or
// single letters; descending ranges count down.
func expandRange(body string) (items []string, ok bool, err error) {
	if m := intRange.FindStringSubmatch(body); m != nil {
		lo, err1 := strconv.Atoi(m[1])
		hi, err2 := strconv.Atoi(m[2])
		step, err3 := rangeStep(m[3])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, false, fmt.Errorf("range {%s}: %w", body, err)
		}
		width := 0
		for _, end := range m[1:3] {
			if end != "0" && end != "-0" && (strings.HasPrefix(end, "0") || strings.HasPrefix(end, "-0")) {
				width = max(len(m[1]), len(m[2]))
			}
		}
		err := stepRange(lo, hi, step, func(v int) { items = append(items, fmt.Sprintf("%0*d", width, v)) })
		return items, true, err
	}
	if m := charRange.FindStringSubmatch(body); m != nil {
		step, err := rangeStep(m[3])
		if err != nil {
			return nil, false, fmt.Errorf("range {%s}: %w", body, err)
		}
		err = stepRange(int(m[1][0]), int(m[2][0]), step, func(v int) { items = append(items, string(rune(v))) })
		return items, true, err
	}
	return nil, false, nil
}

func rangeStep(s string) (int, error) {
	if s == "" {
		return 1, nil
	}
	step, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if step == 0 {
		return 0, errors.New("step 0")
	}
	return max(step, -step), nil
}

// stepRange calls emit for lo..hi inclusive by step, counting down when
// lo > hi.
func stepRange(lo, hi, step int, emit func(int)) error {
	if n := max(hi-lo, lo-hi)/step + 1; n > MaxExpansion {
		return fmt.Errorf("range of %d names exceeds %d", n, MaxExpansion)
	}
	if lo <= hi {
		for v := lo; v <= hi; v += step {
			emit(v)
		}
	} else {
		for v := lo; v >= hi; v -= step {
			emit(v)
		}
	}
	return nil
}
