package dicom

import (
	"encoding/binary"
	"fmt"
)

// tagKey packs group and element.
type tagKey uint32

func tag(group, elem uint16) tagKey { return tagKey(uint32(group)<<16 | uint32(elem)) }

func (t tagKey) String() string { return fmt.Sprintf("(%04X,%04X)", uint16(t>>16), uint16(t)) }

// undefined is the length of sequences and encapsulated pixel data whose end
// is marked by a delimiter.
const undefined = 0xFFFFFFFF

// Item and delimiter tags.
var (
	itemTag         = tag(0xFFFE, 0xE000)
	itemDelimTag    = tag(0xFFFE, 0xE00D)
	sequenceDelimTg = tag(0xFFFE, 0xE0DD)
)

// element is one data element; value is empty for sequences and for
// encapsulated pixel data, whose fragments are in fragments.
type element struct {
	tag       tagKey
	vr        string
	value     []byte
	fragments [][]byte
}

func (e element) uint16() uint16 {
	if len(e.value) < 2 {
		return 0
	}
	return binary.LittleEndian.Uint16(e.value)
}

// parser walks little-endian data elements.
type parser struct {
	data     []byte
	pos      int
	explicit bool
}

// longVRs have a 2-byte reserved field and a 4-byte length in explicit VR.
var longVRs = map[string]bool{"OB": true, "OD": true, "OF": true, "OL": true, "OV": true, "OW": true, "SQ": true, "UC": true, "UN": true, "UR": true, "UT": true, "SV": true, "UV": true}

func (p *parser) need(n int) error {
	if p.pos+n > len(p.data) || n < 0 {
		return fmt.Errorf("%w: file ends at byte %d inside an element (needed %d more bytes)", ErrUnsupported, len(p.data), p.pos+n-len(p.data))
	}
	return nil
}

// header reads a tag, VR and length.
func (p *parser) header() (tagKey, string, uint32, error) {
	if err := p.need(8); err != nil {
		return 0, "", 0, err
	}
	d := p.data[p.pos:]
	t := tag(binary.LittleEndian.Uint16(d), binary.LittleEndian.Uint16(d[2:]))
	if t>>16 == 0xFFFE { // items and delimiters have no VR in any syntax
		p.pos += 8
		return t, "", binary.LittleEndian.Uint32(d[4:]), nil
	}
	if !p.explicit {
		p.pos += 8
		return t, "", binary.LittleEndian.Uint32(d[4:]), nil
	}
	vr := string(d[4:6])
	if longVRs[vr] {
		if err := p.need(12); err != nil {
			return 0, "", 0, err
		}
		p.pos += 12
		return t, vr, binary.LittleEndian.Uint32(d[8:]), nil
	}
	p.pos += 8
	return t, vr, uint32(binary.LittleEndian.Uint16(d[6:])), nil
}

// next reads one element, skipping over the contents of sequences.
func (p *parser) next() (element, error) {
	start := p.pos
	t, vr, length, err := p.header()
	if err != nil {
		return element{}, err
	}
	el := element{tag: t, vr: vr}
	if length == undefined {
		if t == tag(0x7FE0, 0x0010) {
			el.fragments, err = p.fragments()
		} else {
			err = p.skipUndefined()
		}
		if err != nil {
			return element{}, fmt.Errorf("element %s at byte %d: %w", t, start, err)
		}
		return el, nil
	}
	if err := p.need(int(length)); err != nil {
		return element{}, fmt.Errorf("element %s at byte %d: %w", t, start, err)
	}
	el.value = p.data[p.pos : p.pos+int(length)]
	p.pos += int(length)
	return el, nil
}

// skipUndefined skips a sequence of undefined length: items up to the
// sequence delimiter, each either of defined length or holding elements up
// to an item delimiter.
func (p *parser) skipUndefined() error {
	for {
		t, _, length, err := p.header()
		if err != nil {
			return err
		}
		switch t {
		case sequenceDelimTg:
			return nil
		case itemTag:
			if length != undefined {
				if err := p.need(int(length)); err != nil {
					return err
				}
				p.pos += int(length)
				continue
			}
			for {
				if err := p.need(4); err != nil {
					return err
				}
				d := p.data[p.pos:]
				if tag(binary.LittleEndian.Uint16(d), binary.LittleEndian.Uint16(d[2:])) == itemDelimTag {
					p.pos += 8
					break
				}
				if _, err := p.next(); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("%w: unexpected element %s inside a sequence", ErrUnsupported, t)
		}
	}
}

// fragments reads encapsulated pixel data: a basic offset table item, then
// one item per fragment, then the sequence delimiter.
func (p *parser) fragments() ([][]byte, error) {
	var out [][]byte
	for first := true; ; first = false {
		t, _, length, err := p.header()
		if err != nil {
			return nil, err
		}
		if t == sequenceDelimTg {
			return out, nil
		}
		if t != itemTag || length == undefined {
			return nil, fmt.Errorf("%w: bad encapsulated pixel data item %s", ErrUnsupported, t)
		}
		if err := p.need(int(length)); err != nil {
			return nil, err
		}
		if !first { // the first item is the basic offset table
			out = append(out, p.data[p.pos:p.pos+int(length)])
		}
		p.pos += int(length)
	}
}

// firstFrame joins the fragments of the first frame: for single-frame
// files all of them (a frame may span fragments); for multi-frame files
// the fragments up to the first JPEG end-of-image marker.
func firstFrame(el *element) ([]byte, error) {
	if len(el.fragments) == 0 {
		return nil, fmt.Errorf("%w: encapsulated pixel data has no fragments", ErrUnsupported)
	}
	var frame []byte
	for _, f := range el.fragments {
		frame = append(frame, f...)
		if n := len(f); n >= 2 && f[n-2] == 0xFF && f[n-1] == 0xD9 {
			break
		}
		// Fragments are padded to even length, so the end marker may be
		// followed by one zero byte.
		if n := len(f); n >= 3 && f[n-3] == 0xFF && f[n-2] == 0xD9 && f[n-1] == 0 {
			break
		}
	}
	return frame, nil
}
