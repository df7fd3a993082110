"""Summarises the optimised XLA program of a dump: what the GPU really runs.

  python3 hlo_summary.py DUMP_DIR

DUMP_DIR is what XLA_FLAGS="--xla_dump_to=DUMP_DIR --xla_dump_hlo_as_text"
wrote. The largest "after optimizations" module is taken (the training step).
It prints the kernels the entry computation launches (fusions by kind,
library calls by target, copies and transposes left unfused), and every
matrix product: cuBLAS/cuBLASLt gemms, Triton gemm fusions and plain dots,
and dots (inside fusions: Triton gemms on a GPU, or unfused), with operand
dtypes and precision, so a bf16 step whose products are not all
bf16, or an f32 step whose dots do not ask for highest precision, shows.
The last line is one JSON object with the counts.
"""
import collections
import glob
import json
import os
import re
import sys

NOT_KERNELS = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "after-all",
               "partition-id", "replica-id", "opt-barrier", "add-dependency"}
INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.+?)\s+([a-z][\w\-]*)\((.*)$")
COMP = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)")
TYPE = re.compile(r"\b(pred|s8|s16|s32|s64|u8|u32|f16|bf16|f32|f64|tf32|f8e4m3fn|f8e5m2)\[")


def parse(text):
    """Returns {computation: [(name, result_type, opcode, rest)]} and the entry's name."""
    comps, entry, cur = {}, None, None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith("{"):
            m = COMP.match(line)
            if m:
                cur = m.group(2)
                comps[cur] = []
                if m.group(1):
                    entry = cur
            continue
        if line.strip() == "}":
            cur = None
            continue
        m = INSTR.match(line)
        if m and cur is not None:
            comps[cur].append((m.group(1), m.group(2), m.group(3), m.group(4)))
    return comps, entry


def operand_types(rest, types):
    """The dtypes of an instruction's operands: written inline by newer XLA
    ("bf16[8,64]{1,0} %x"), else looked up by name in types."""
    depth, args = 0, ""
    for ch in rest:
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                break
            depth -= 1
        args += ch
    inline = TYPE.findall(args)
    if inline:
        return inline
    return [types.get(n, "?") for n in re.findall(r"%?([\w.\-]+)", args) if n in types]


def result_type(t):
    m = TYPE.search(t)
    return m.group(1) if m else "?"


def summarize(path):
    comps, entry = parse(open(path).read())
    if entry is None:
        sys.exit(f"hlo_summary: no ENTRY computation in {path}")
    types = {c: {name: result_type(rt) for name, rt, _, _ in instrs} for c, instrs in comps.items()}
    kernels = collections.Counter()
    products = collections.Counter()
    for name, rtype, op, rest in comps[entry]:
        if op in NOT_KERNELS:
            continue
        if op == "fusion":
            kind = re.search(r"kind=(\w+)", rest)
            kernels["fusion " + (kind.group(1) if kind else "?")] += 1
        elif op == "custom-call":
            target = re.search(r'custom_call_target="([^"]+)"', rest)
            target = target.group(1) if target else "?"
            kernels["custom-call " + target] += 1
            if "gemm" in target or "matmul" in target:
                ts = operand_types(rest, types[entry])[:2]
                products[f"{target} {'x'.join(ts)}->{result_type(rtype)}"] += 1
        else:
            kernels[op] += 1
    for cname, comp in comps.items():
        for _, dt, op, rest in comp:
            if op == "dot":
                prec = re.search(r"operand_precision=\{([^}]*)\}", rest)
                algo = re.search(r"algorithm=(\w+)", rest)
                how = (prec.group(1) if prec else "default precision") + (", " + algo.group(1) if algo else "")
                where = "in a fusion" if cname != entry else "unfused"
                products[f"dot {'x'.join(operand_types(rest, types[cname])[:2])}->{result_type(dt)} ({how}; {where})"] += 1
    return kernels, products


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    files = glob.glob(os.path.join(sys.argv[1], "*after_optimizations.txt"))
    if not files:
        sys.exit(f"hlo_summary: no *after_optimizations.txt in {sys.argv[1]} (was --xla_dump_hlo_as_text set?)")
    path = max(files, key=os.path.getsize)
    kernels, products = summarize(path)
    print(f"program {os.path.basename(path)}: {sum(kernels.values())} kernels in the entry computation")
    for k, n in kernels.most_common():
        print(f"  {n:5d}  {k}")
    print("matrix products (library gemms, Triton gemm fusions, dots in any computation):")
    for k, n in sorted(products.items()):
        print(f"  {n:5d}  {k}")
    print(json.dumps({"side": "hlo", "file": os.path.basename(path), "kernels": sum(kernels.values()),
                      "by_kind": dict(kernels), "products": dict(products)}))


if __name__ == "__main__":
    main()
