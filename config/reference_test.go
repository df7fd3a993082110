package config

import (
	"bufio"
	"bytes"
	"encoding"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// configKey is one leaf of the config tree: a key --set can address.
type configKey struct {
	// value is the field in Default().
	value reflect.Value
}

// leafKeys walks v's YAML keys as the decoder does (inline structs
// included, "-" left out) down to the values: fields that are not
// structs, or that parse their own spelling (train.precision).
func leafKeys(v reflect.Value, prefix string, out map[string]configKey) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			leafKeys(v.Field(i), prefix, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		key := prefix + name
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && !reflect.PointerTo(fv.Type()).Implements(textUnmarshaler) {
			leafKeys(fv, key+".", out)
			continue
		}
		out[key] = configKey{value: fv}
	}
}

// readmeRow is one row of the README's config reference: the keys its first
// column names and, per key, the text of its default column.
type readmeRow struct {
	line     int
	keys     []string
	defaults []string
}

var backticked = regexp.MustCompile("`([^`]+)`")

// readmeReference parses the table under "## Config reference". A key cell
// names one key in full and may add siblings by their last part
// ("`data.parquet.image` / `caption`"); a default cell holds one default
// for all of them or one per key, separated by " / ".
func readmeReference(t *testing.T) []readmeRow {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Skipf("README not found: %v", err)
	}
	var rows []readmeRow
	in := false
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## Config reference"
			continue
		case !in || !strings.HasPrefix(line, "| `"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 3 {
			t.Fatalf("README line %d: a row of the config reference with %d cells", n, len(cells))
		}
		row := readmeRow{line: n}
		for i, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
			key := m[1]
			if i > 0 && !strings.Contains(key, ".") {
				key = row.keys[0][:strings.LastIndex(row.keys[0], ".")+1] + key // a sibling of the row's first key
			}
			row.keys = append(row.keys, key)
		}
		defaults := strings.Split(strings.TrimSpace(cells[1]), " / ")
		switch len(defaults) {
		case len(row.keys):
			row.defaults = defaults
		case 1:
			for range row.keys {
				row.defaults = append(row.defaults, defaults[0])
			}
		default:
			t.Errorf("README line %d: %d defaults for %d keys", n, len(defaults), len(row.keys))
			continue
		}
		rows = append(rows, row)
	}
	if len(rows) < 50 {
		t.Fatalf("README's config reference: %d rows found; the table was not parsed", len(rows))
	}
	return rows
}

var parenthesis = regexp.MustCompile(`\s*\([^)]*\)$`)

// literalDefault reads a README default as a value of typ: "–" is the zero
// value; a backticked value or a bare number, boolean or list is decoded
// as YAML. Anything else ("CPUs", "one pass", "from name") describes the
// default rather than stating it, and ok is false. A trailing remark in
// parentheses ("0 (all)") is dropped.
func literalDefault(text string, typ reflect.Type) (v reflect.Value, ok bool, err error) {
	text = parenthesis.ReplaceAllString(strings.TrimSpace(text), "")
	if text == "–" {
		return reflect.Zero(typ), true, nil
	}
	lit, quoted := strings.CutPrefix(text, "`")
	if quoted {
		var closed bool
		if lit, closed = strings.CutSuffix(lit, "`"); !closed || strings.Contains(lit, "`") {
			return v, false, nil
		}
	} else if typ.Kind() == reflect.String {
		return v, false, nil
	}
	ptr := reflect.New(typ)
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(lit), &node); err != nil || len(node.Content) != 1 {
		return v, false, nil
	}
	if err := node.Content[0].Decode(ptr.Interface()); err != nil {
		if quoted {
			return v, false, fmt.Errorf("`%s` is not a %s: %w", lit, typ, err)
		}
		return v, false, nil
	}
	return ptr.Elem(), true, nil
}

// TestREADMEConfigReference keeps the README's config reference true to
// Config: every key has a row, every row names real keys, and every
// default the README states as a value is Default()'s. The model section's
// defaults come from model.name and OpenCLIP's tower defaults, not from
// Default(), so its values are not compared.
func TestREADMEConfigReference(t *testing.T) {
	keys := map[string]configKey{}
	leafKeys(reflect.ValueOf(Default()), "", keys)
	documented := map[string]bool{}
	compared := 0
	for _, row := range readmeReference(t) {
		for i, key := range row.keys {
			k, ok := keys[key]
			if !ok {
				t.Errorf("README line %d: %s is not a config key", row.line, key)
				continue
			}
			if documented[key] {
				t.Errorf("README line %d: %s has a second row", row.line, key)
			}
			documented[key] = true
			if strings.HasPrefix(key, "model.") {
				continue
			}
			want, ok, err := literalDefault(row.defaults[i], k.value.Type())
			switch {
			case err != nil:
				t.Errorf("README line %d: %s: default %s", row.line, key, err)
			case !ok:
				t.Logf("%s: default %q is a description, not compared", key, row.defaults[i])
			case !reflect.DeepEqual(want.Interface(), k.value.Interface()) && !(want.IsZero() && isEmpty(k.value)):
				t.Errorf("README line %d: %s defaults to %v in the README, %v in Default()", row.line, key, want, k.value)
			default:
				compared++
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		if !documented[key] {
			t.Errorf("README's config reference has no row for %s", key)
		}
	}
	if compared < 40 {
		t.Errorf("only %d defaults compared: the README's defaults were not read", compared)
	}
}

// isEmpty is true of nil and empty slices and maps and of zero values.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	}
	return v.IsZero()
}

// TestEveryKeyHasADocComment: each field that gives the config a key or a
// section is documented where it is declared, in the config or in the
// library type the config embeds, since that comment is the option's
// documentation for both.
func TestEveryKeyHasADocComment(t *testing.T) {
	const module = "github.com/bmca/bmca/"
	structs := map[string]*ast.StructType{} // "pkgpath.Type" → declaration
	parsed := map[string]bool{}
	declaration := func(typ reflect.Type) *ast.StructType {
		pkg := typ.PkgPath()
		if !parsed[pkg] {
			parsed[pkg] = true
			rel, ok := strings.CutPrefix(pkg, module)
			if pkg == strings.TrimSuffix(module, "/") {
				rel, ok = ".", true
			}
			if !ok {
				t.Fatalf("%s: a config type outside the module", typ)
			}
			files, err := filepath.Glob(filepath.Join("..", rel, "*.go"))
			if err != nil {
				t.Fatal(err)
			}
			fset := token.NewFileSet()
			for _, file := range files {
				if strings.HasSuffix(file, "_test.go") {
					continue
				}
				f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
				if err != nil {
					t.Fatal(err)
				}
				ast.Inspect(f, func(n ast.Node) bool {
					if ts, ok := n.(*ast.TypeSpec); ok {
						if st, ok := ts.Type.(*ast.StructType); ok {
							structs[pkg+"."+ts.Name.Name] = st
						}
					}
					return true
				})
			}
		}
		return structs[pkg+"."+typ.Name()]
	}
	checked := 0
	var walk func(typ reflect.Type, prefix string)
	walk = func(typ reflect.Type, prefix string) {
		decl := declaration(typ)
		if decl == nil {
			t.Errorf("%s: declaration of %s not found", prefix, typ)
			return
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if strings.Contains(opts, "inline") {
				walk(ft, prefix)
				continue
			}
			key := prefix + name
			if !hasDoc(decl, f.Name) {
				t.Errorf("%s: %s.%s has no doc comment", key, typ, f.Name)
			}
			checked++
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
				walk(ft, key+".")
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	if checked < 80 {
		t.Errorf("only %d fields checked", checked)
	}
}

// hasDoc reports whether the field name of st has a doc or line comment.
func hasDoc(st *ast.StructType, name string) bool {
	for _, f := range st.Fields.List {
		for _, n := range f.Names {
			if n.Name == name {
				return f.Doc.Text() != "" || f.Comment.Text() != ""
			}
		}
	}
	return false
}
