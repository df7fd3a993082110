// Package graphstats reads a built GoMLX graph the way a profiler reads a
// compiled program: which matrix products it asks for and in which dtypes,
// how many conversions and transposes it moves through memory, and which
// parameters it converts more than once. It needs no accelerator, so what a
// GPU run would be asked to compute can be checked in CI on the CPU.
//
// Only nodes that an output depends on are counted: autodiff builds some
// nodes that nothing uses, and every backend drops them.
//
//	s, err := graphstats.Summarize(outputs)
//	fmt.Print(s.Table())
package graphstats

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Product is one matrix product (DotGeneral) of the program.
type Product struct {
	LHS, RHS, Output shapes.Shape
	// Accumulator is the accumulation dtype the product asks for
	// (InvalidDType: the operands' own).
	Accumulator dtypes.DType
	// FLOPs counts a multiply-add as two.
	FLOPs float64
	// ParamOperand is true when an operand is a graph parameter (a model
	// variable) or a dtype conversion of one: a weight product.
	ParamOperand bool
}

// Kind names a product by its operand and output dtypes, "BFloat16×BFloat16→BFloat16".
func (p Product) Kind() string {
	return fmt.Sprintf("%s×%s→%s", p.LHS.DType, p.RHS.DType, p.Output.DType)
}

// Summary is what one program computes, counted by kind.
type Summary struct {
	// Nodes counts the live nodes by type.
	Nodes map[string]int
	// Products are the matrix products in graph order.
	Products []Product
	// Converts counts dtype conversions by "From→To", and ConvertBytes the
	// bytes they write.
	Converts     map[string]int
	ConvertBytes map[string]int64
	// Transposes is the number of transposes that move data and
	// TransposeBytes what they write. IdentityTransposes keep every axis in
	// place (GoMLX's matmul gradient emits them): XLA drops them, the pure-Go
	// backend copies.
	Transposes         int
	TransposeBytes     int64
	IdentityTransposes int
	// ParamConverts counts, per parameter name, the dtype conversions
	// applied directly to it (a weight converted twice is wasted work).
	ParamConverts map[string]int
}

// Summarize walks the graph backwards from outputs.
func Summarize(outputs []*Node) (*Summary, error) {
	s := &Summary{Nodes: map[string]int{}, Converts: map[string]int{}, ConvertBytes: map[string]int64{},
		ParamConverts: map[string]int{}}
	live := liveNodes(outputs)
	for _, n := range live {
		typ := n.Type()
		s.Nodes[typ.String()]++
		switch typ {
		case NodeTypeDotGeneral:
			p, err := product(n)
			if err != nil {
				return nil, err
			}
			s.Products = append(s.Products, p)
		case NodeTypeConvertDType:
			in := n.Inputs()[0]
			key := fmt.Sprintf("%s→%s", in.DType(), n.DType())
			s.Converts[key]++
			s.ConvertBytes[key] += int64(n.Shape().ByteSize())
			if in.Type() == NodeTypeParameter {
				s.ParamConverts[in.GetParameterName()]++
			}
		case NodeTypeTranspose:
			identity, err := isIdentityTranspose(n)
			if err != nil {
				return nil, err
			}
			if identity {
				s.IdentityTransposes++
				continue
			}
			s.Transposes++
			s.TransposeBytes += int64(n.Shape().ByteSize())
		}
	}
	return s, nil
}

// liveNodes returns the nodes outputs depend on, in id (graph) order.
func liveNodes(outputs []*Node) []*Node {
	seen := map[NodeId]*Node{}
	stack := slices.Clone(outputs)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == nil {
			continue
		}
		if _, ok := seen[n.Id()]; ok {
			continue
		}
		seen[n.Id()] = n
		stack = append(stack, n.Inputs()...)
	}
	out := make([]*Node, 0, len(seen))
	for _, n := range seen {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id() < out[j].Id() })
	return out
}

// dotGeneralText matches GoMLX v0.28's description of a DotGeneral node,
// the only place its axes and accumulation dtype can be read from outside
// the graph package.
var dotGeneralText = regexp.MustCompile(`lhsContractingAxes=\[([0-9 ]*)\], lhsBatchAxes=\[([0-9 ]*)\].*config=\{AccumulatorDType:(\w+)`)

func product(n *Node) (Product, error) {
	lhs, rhs := n.Inputs()[0], n.Inputs()[1]
	m := dotGeneralText.FindStringSubmatch(n.String())
	if m == nil {
		return Product{}, fmt.Errorf("graphstats: cannot read the axes of %s (GoMLX changed its node description?)", n)
	}
	contracted := 1
	for _, f := range strings.Fields(m[1]) {
		axis, err := strconv.Atoi(f)
		if err != nil {
			return Product{}, fmt.Errorf("graphstats: %s: %w", n, err)
		}
		contracted *= lhs.Shape().Dim(axis)
	}
	acc, err := dtypes.DTypeString(m[3])
	if err != nil {
		acc = dtypes.InvalidDType
	}
	return Product{LHS: lhs.Shape(), RHS: rhs.Shape(), Output: n.Shape(), Accumulator: acc,
		FLOPs:        2 * float64(n.Shape().Size()) * float64(contracted),
		ParamOperand: isParam(lhs) || isParam(rhs)}, nil
}

var transposeText = regexp.MustCompile(`permutation=\[([0-9 ]*)\]`)

func isIdentityTranspose(n *Node) (bool, error) {
	m := transposeText.FindStringSubmatch(n.String())
	if m == nil {
		return false, fmt.Errorf("graphstats: cannot read the permutation of %s (GoMLX changed its node description?)", n)
	}
	for i, f := range strings.Fields(m[1]) {
		if f != strconv.Itoa(i) {
			return false, nil
		}
	}
	return true, nil
}

func isParam(n *Node) bool {
	if n.Type() == NodeTypeConvertDType {
		n = n.Inputs()[0]
	}
	return n.Type() == NodeTypeParameter
}

// ProductsByKind adds up count and FLOPs per Product.Kind.
func (s *Summary) ProductsByKind() map[string]struct {
	Count int
	FLOPs float64
} {
	out := map[string]struct {
		Count int
		FLOPs float64
	}{}
	for _, p := range s.Products {
		e := out[p.Kind()]
		e.Count++
		e.FLOPs += p.FLOPs
		out[p.Kind()] = e
	}
	return out
}

// TotalFLOPs is the FLOPs of every product.
func (s *Summary) TotalFLOPs() float64 {
	total := 0.0
	for _, p := range s.Products {
		total += p.FLOPs
	}
	return total
}

// Table prints the summary for a person: products by kind with their share
// of the product FLOPs, conversions, transposes, repeated parameter
// conversions.
func (s *Summary) Table() string {
	var b strings.Builder
	total := s.TotalFLOPs()
	byKind := s.ProductsByKind()
	kinds := sortedKeys(byKind)
	fmt.Fprintf(&b, "matrix products: %d, %.3g GFLOP\n", len(s.Products), total/1e9)
	for _, k := range kinds {
		e := byKind[k]
		fmt.Fprintf(&b, "  %-40s %5d  %10.3g GFLOP  %5.1f%%\n", k, e.Count, e.FLOPs/1e9, 100*e.FLOPs/total)
	}
	fmt.Fprintf(&b, "dtype conversions: %d\n", sum(s.Converts))
	for _, k := range sortedKeys(s.Converts) {
		fmt.Fprintf(&b, "  %-40s %5d  %10.1f MiB\n", k, s.Converts[k], float64(s.ConvertBytes[k])/(1<<20))
	}
	fmt.Fprintf(&b, "transposes: %d, %.1f MiB written (and %d that keep every axis in place)\n", s.Transposes, float64(s.TransposeBytes)/(1<<20), s.IdentityTransposes)
	repeated := 0
	for _, c := range s.ParamConverts {
		if c > 1 {
			repeated++
		}
	}
	fmt.Fprintf(&b, "parameters converted: %d (%d more than once)\n", len(s.ParamConverts), repeated)
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sum(m map[string]int) int {
	total := 0
	for _, v := range m {
		total += v
	}
	return total
}
