package tasks

import (
	"errors"
	"fmt"
	"strings"
)

// FormatTemplate fills a prompt template with a class name, as Python's
// template.format(c=class) does for CLIP_benchmark templates ("{c}") and
// template.format(class) for OpenCLIP's ("{}", "{0}"). "{{" and "}}" are
// literal braces. Any other replacement field is an error.
func FormatTemplate(template, class string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(template); i++ {
		switch ch := template[i]; ch {
		case '{':
			if strings.HasPrefix(template[i:], "{{") {
				b.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(template[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("template %q: unclosed '{' at byte %d", template, i)
			}
			switch field := template[i+1 : i+end]; field {
			case "c", "", "0":
				b.WriteString(class)
			default:
				return "", fmt.Errorf("template %q: unsupported field {%s} (use {c} for the class name)", template, field)
			}
			i += end
		case '}':
			if !strings.HasPrefix(template[i:], "}}") {
				return "", fmt.Errorf("template %q: single '}' at byte %d (write }} for a literal brace)", template, i)
			}
			b.WriteByte('}')
			i++
		default:
			b.WriteByte(ch)
		}
	}
	return b.String(), nil
}

// checkTemplate reports a template that does not format or has no class
// placeholder (every class would get the same prompt).
func checkTemplate(template string) error {
	a, err := FormatTemplate(template, "\x00")
	if err != nil {
		return err
	}
	if !strings.Contains(a, "\x00") {
		return errors.New("no {c} placeholder for the class name")
	}
	return nil
}

// Prompts formats every template for every class, class-major: class 0 with
// templates 0..T-1, then class 1, … — the order OpenCLIP encodes them in.
func Prompts(classes, templates []string) ([]string, error) {
	out := make([]string, 0, len(classes)*len(templates))
	for _, c := range classes {
		for _, t := range templates {
			p, err := FormatTemplate(t, c)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}
