"""gpu-check.sh's bookkeeping: tags result lines and prints the summary table.

  python3 summary.py tag side=bmca device_mem_mib=1234 < bench.json >> results.jsonl
  python3 summary.py table results.jsonl [PEAK_TFLOPS]
  python3 summary.py xlamem bench.stderr     (GiB of the compiled step's temporaries)

Each line of results.jsonl is one JSON object with a "side": "bmca" (cmd/bench
--json, tagged), "openclip" (openclip_step.py), "jax" (jax_clip_step.py),
"parity" (parity.py). The table pairs bmca's bf16, tf32 and f32 with
OpenCLIP's amp_bf16, tf32 and fp32 and counts FLOPs for both sides with
bmca's analytic count of the same architecture (training = 3 x forward).
PEAK_TFLOPS (default 790, an H200's dense bf16) gives the "% peak" columns.
"""
import json
import re
import sys

PEER = {"bf16": "amp_bf16", "tf32": "tf32", "f32": "fp32"}


def tag():
    rec = json.loads(sys.stdin.read().strip().splitlines()[-1])
    for kv in sys.argv[2:]:
        k, _, v = kv.partition("=")
        try:
            rec[k] = float(v) if "." in v or "e" in v else int(v)
        except ValueError:
            rec[k] = v
    print(json.dumps(rec))


def xlamem():
    """Prints, in GiB, the largest "Temporary" of the XLA compile log lines in a file."""
    units = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
    best = None
    for m in re.finditer(r"Temporary:\s*([0-9.]+)\s*([kMGT]?B)", open(sys.argv[2], errors="replace").read()):
        v = float(m.group(1)) * units[m.group(2)] / 2**30
        best = v if best is None else max(best, v)
    print("" if best is None else f"{best:.2f}")


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(path, peak):
    recs = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    bmca = [r for r in recs if r.get("side") == "bmca" and r.get("case") != "smoke"]
    peers = {(r["model"], r["precision"], r["batch"]): r for r in recs if r.get("side") == "openclip"}
    jax = {(r["model"], r["precision"], r["batch"]): r for r in recs if r.get("side") == "jax"}
    head = ["model", "batch", "precision", "bmca ms", "TFLOP/s", "%peak", "OpenCLIP ms", "TFLOP/s", "%peak",
            "bmca/OC time", "bmca dev GiB", "XLA temp GiB", "OC alloc/resv GiB", "compile s", "JAX ms", "attention"]
    rows = []
    for r in bmca:
        gflop = r["gflop_per_step"]
        tfl = gflop / r["step_ms"]  # GFLOP per ms = TFLOP/s
        p = peers.get((r["model"], PEER.get(r["precision"], "?"), r["batch"]))
        j = jax.get((r["model"], r["precision"], r["batch"]))
        ptfl = gflop / p["step_ms"] if p else None
        mem = r.get("device_mem_mib")
        oc_mem = None
        if p and "peak_allocated_gib" in p:
            oc_mem = f'{p["peak_allocated_gib"]:.1f}/{p["peak_reserved_gib"]:.1f}'
        rows.append([r["model"], str(r["batch"]), r["precision"], fmt(r["step_ms"], ".1f"), fmt(tfl, ".3g"),
                     fmt(100 * tfl / peak, ".2g"), fmt(p and p["step_ms"], ".1f"), fmt(ptfl, ".3g"),
                     fmt(ptfl and 100 * ptfl / peak, ".2g"), fmt(p and r["step_ms"] / p["step_ms"], ".2f"),
                     fmt(mem and mem / 1024, ".1f"), fmt(r.get("xla_temp_gib"), ".1f"), oc_mem or "-",
                     fmt(r.get("first_step_s"), ".0f"), fmt(j and j["step_ms"], ".1f"), r.get("attention", "")])
    widths = [max(len(x) for x in col) for col in zip(head, *rows)] if rows else [len(h) for h in head]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    for r in recs:
        if r.get("side") == "parity":
            print(f'parity {r["label"]}: image {r["image_features_max_abs"]:.2e}, text {r["text_features_max_abs"]:.2e}, '
                  f'logits {r["logits_per_image_max_abs"]:.2e} (tolerance {r["tolerance"]:g}): {"PASS" if r["pass"] else "FAIL"}')
    print(f"% peak: of {peak:g} TFLOP/s. bmca dev GiB: the step process's device memory as nvidia-smi reports it "
          "(CUDA context and XLA's allocator pool included), XLA temp: the compiled step's planned temporaries; "
          "OC alloc/resv: torch max_memory_allocated / max_memory_reserved. compile s: bmca's first step.")


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "tag":
        tag()
    elif len(sys.argv) == 3 and sys.argv[1] == "xlamem":
        xlamem()
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "table":
        table(sys.argv[2], float(sys.argv[3]) if len(sys.argv) == 4 else 790.0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
