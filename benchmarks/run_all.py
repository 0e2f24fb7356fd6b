"""Run every benchmark in one go and print the table of ratios.

    make bench            # or: python benchmarks/run_all.py

Each figure is measured side by side with its baseline in the same run;
results land in benchmarks/results/{train,fit,runtime,memory,scale,families,params,emulator,train_scale,summary}.json, and the
tables in docs/performance.md and docs/families.md are rewritten from them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_emulator  # noqa: E402
import bench_families  # noqa: E402
import bench_fit  # noqa: E402
import bench_memory  # noqa: E402
import bench_params  # noqa: E402
import bench_runtime  # noqa: E402
import bench_scale  # noqa: E402
import bench_small_calls  # noqa: E402
import bench_train  # noqa: E402
import bench_train_scale  # noqa: E402
import write_docs  # noqa: E402
from common import RESULTS, save, table  # noqa: E402


def ok(flag: bool) -> str:
    return "met" if flag else "MISSED"


def main(example_epochs: int, scale_rows: int) -> str:
    bench_train.main(example_epochs=example_epochs, n_targets=2000)
    bench_fit.main(n_targets=10_000, n_nm=200)
    bench_runtime.main()
    bench_small_calls.main(str(bench_memory.WORK / "run"), str(bench_memory.WORK / "model"))
    bench_memory.main(bench_memory.WORK / "model")
    bench_scale.main(rows=scale_rows, rounds=2, sizes=[10_000, 100_000, 1_000_000])
    families = bench_families.main()  # docs/families.md
    for row in families["families"]:
        print(f"{row['name']}: " + "; ".join(f"{label} {'met' if good else 'MISSED'}"
                                              for label, good in bench_families.verdicts(row)))
    bench_params.main()  # results/params.json: docs/parameters.md
    bench_emulator.main(("beta", "peak", "logistic", "planck"))  # results/emulator.json: docs/parameters.md
    bench_train_scale.main()  # results/train_scale.json: docs/scale.md, "Training at scale"
    return summarise()


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def summarise() -> str:
    """The table of ratios from the results JSON of each benchmark; rewrites docs/performance.md and docs/scale.md."""
    tr, fi, rt, mem, sc = (load(n) for n in ("train", "fit", "runtime", "memory", "scale"))
    c, e = tr["curvae"], tr["example"]
    db, d1, cs = rt["decode_batch"], rt["decode_one_row"], rt["cold_start"]
    rows = [
        ("train time (s)", f"{c['seconds']:.1f}", f"{e['seconds_100_epochs']:.0f} (example, 100 ep)",
         f"1/{tr['speedup']:.0f}", f"<= 1/50: {ok(tr['speedup'] >= 50)}"),
        ("fit residual median", f"{c['residual_median']:.4f}", f"{e['residual_median']:.4f}",
         f"{c['residual_median'] / e['residual_median']:.2f}", f"<= 0.057: {ok(c['residual_median'] <= 0.057)}"),
        ("fit residual p90", f"{c['residual_p90']:.4f}", f"{e['residual_p90']:.4f}",
         f"{c['residual_p90'] / e['residual_p90']:.2f}", f"<= 0.12: {ok(c['residual_p90'] <= 0.12)}"),
        ("latent mean / std", " ".join(f"{m:+.2f}/{s:.2f}" for m, s in zip(c["latent_mean"], c["latent_std"])),
         "0 / 1", "", "within 0.15: " + ok(all(abs(m) <= 0.15 and abs(s - 1) <= 0.15
                                                for m, s in zip(c["latent_mean"], c["latent_std"])))),
        ("fit ms/target (10k)", f"{fi['curvae_lm']['ms_per_target']:.4f}",
         f"{fi['example_nelder_mead']['ms_per_target']:.2f} (Nelder-Mead)", f"{fi['speedup']:.0f}x",
         f">= 200x: {ok(fi['speedup'] >= 200)}"),
        ("fit + uncertainty and OOD flag (10k), s", f"{fi['uncertainty']['seconds_with_uncertainty']:.3f}",
         f"{fi['uncertainty']['seconds_plain']:.3f} (point fit)", f"+{fi['uncertainty']['overhead']:.0%}",
         f"<= +25%: {ok(fi['uncertainty']['overhead'] <= 0.25)}"),
        ("fit + uncertainty, sigma given (10k), s", f"{fi['uncertainty_sigma']['seconds_with_uncertainty']:.3f}",
         f"{fi['uncertainty_sigma']['seconds_plain']:.3f} (point fit, sigma)",
         f"+{fi['uncertainty_sigma']['overhead']:.0%}", f"<= +10%: {ok(fi['uncertainty_sigma']['overhead'] <= 0.10)}"),
        ("fit 10k with 30% of points missing, s", f"{fi['masked']['seconds_masked']:.3f}",
         f"{fi['masked']['seconds_complete']:.3f} (complete)", f"{fi['masked']['ratio']:.2f}x",
         f"<= 1.5x: {ok(fi['masked']['ratio'] <= 1.5)}"),
        ("fit median vs best of 8 starts", f"{fi['curvae_lm']['residual_median']:.4f}",
         f"{fi['best_multistart']['residual_median']:.4f}", f"{fi['median_vs_best']:+.2%}",
         f"within 1%: {ok(fi['median_vs_best'] <= 0.01)}"),
        ("stream-fit 1M-row .npy: peak RSS growth (MiB)", f"{fi['stream']['rss_growth_mib']:.0f}",
         f"{fi['stream']['input_mib']:.0f} (input size)", f"{fi['stream']['rss_growth_mib'] / fi['stream']['input_mib']:.2f}",
         "bounded: " + ok(fi['stream']['rss_growth_mib'] < 0.25 * fi['stream']['input_mib'])),
        ("decode 100k rows (s)", f"{db['ort_s']:.4f}", f"{db['torch_s']:.4f} (torch eager)", f"{db['speedup']:.2f}x",
         f">= 3x: {ok(db['speedup'] >= 3)}"),
        ("decode GFLOP/s vs numpy as configured", f"{db['ort_gflops']:.1f}",
         f"{db['matmul_gflops']['as_configured']:.1f} (numpy 2048² matmul)",
         f"{db['ort_gflops'] / db['matmul_gflops']['as_configured']:.0%}",
         f">= 60%: {ok(db['ort_gflops'] / db['matmul_gflops']['as_configured'] >= 0.6)}"),
        ("decode GFLOP/s vs numpy, OpenBLAS kernel", f"{db['ort_gflops']:.1f}",
         f"{db['matmul_gflops']['openblas_default_kernel']:.1f} (numpy 2048² matmul)",
         f"{db['fraction_of_matmul']:.0%}", f">= 60%: {ok(db['fraction_of_matmul'] >= 0.6)}"),
        ("same, decoding into a reused out= buffer", f"{db['ort_out_gflops']:.1f}",
         f"{db['matmul_gflops']['openblas_default_kernel']:.1f} (numpy 2048² matmul)",
         f"{db['fraction_of_matmul_out']:.0%}", f">= 60%: {ok(db['fraction_of_matmul_out'] >= 0.6)}"),
        ("decode 1 row (µs)", f"{d1['ort_us']:.1f}", f"{d1['torch_us']:.1f} (torch eager)", f"{d1['ratio']:.2f}",
         f"<= 0.5: {ok(d1['ratio'] <= 0.5)}"),
    ]
    if "deep" in rt:  # the largest network the capacity search may choose
        dd = rt["deep"]["decode_batch"]
        rows += [
            (f"decode 100k rows, {rt['deep']['network']} (s)", f"{dd['ort_s']:.4f}", f"{dd['torch_s']:.4f} (torch eager)",
             f"{dd['speedup']:.2f}x", f">= 3x: {ok(dd['speedup'] >= 3)}"),
            (f"decode GFLOP/s, {rt['deep']['network']}", f"{dd['ort_gflops']:.1f}",
             f"{dd['matmul_gflops']['reference']:.1f} (numpy 2048² matmul)", f"{dd['fraction_of_matmul']:.0%}",
             f">= 60%: {ok(dd['fraction_of_matmul'] >= 0.6)}"),
            (f"decode 1 row, {rt['deep']['network']} (µs)", f"{rt['deep']['decode_one_row']['ort_us']:.1f}",
             f"{rt['deep']['decode_one_row']['torch_us']:.1f} (torch eager)",
             f"{rt['deep']['decode_one_row']['ratio']:.2f}", f"<= 0.5: {ok(rt['deep']['decode_one_row']['ratio'] <= 0.5)}"),
        ]
    rows += [
        ("cold start (s)", f"{cs['runtime_s']:.3f}", f"{cs['import_torch_s']:.3f} (import torch)", f"{cs['ratio']:.2f}",
         f"<= 0.15: {ok(cs['ratio'] <= 0.15)}"),
        ("peak RSS (MiB): load + decode", f"{rt['peak_rss_mib']['runtime_load_and_decode']:.0f}",
         f"{rt['peak_rss_mib']['import_torch']:.0f} (import torch)",
         f"{rt['peak_rss_mib']['runtime_load_and_decode'] / rt['peak_rss_mib']['import_torch']:.2f}", "report"),
    ]
    rows.append(("RSS over 10k mixed calls (MiB)", f"{mem['rss_mib'][0][1]:.0f} -> {mem['rss_mib'][-1][1]:.0f}",
                 "", f"+{mem['growth_mib']:.1f}", "bounded: " + ok(mem["growth_last_half_mib"] < 5)))
    rows += scale_rows(sc)
    text = table(rows)
    save("summary", {"table": text, "rows": rows})
    write_docs.main()  # docs/performance.md's and docs/scale.md's tables come from the JSON just written
    return text


def scale_rows(sc: dict) -> list[tuple[str, str, str, str, str]]:
    """Rows of the scale benchmark (bench_scale.py): in-memory fits by size, then the Dask runs."""
    rows = []
    mem = {r["rows"]: r for r in sc["in_memory"]}
    ref = mem[min(mem)]  # every size is past the fit's internal chunk (4096 rows)
    for n, r in sorted(mem.items()):
        flat = "report" if n <= ref["rows"] else "flat vs " + f"{ref['rows']:,}: " + ok(r["working_mib"] <= 1.25 * ref["working_mib"])
        rows.append((f"model.fit {n:,} targets: µs/target, working MiB", f"{r['us_per_target']:.1f} µs, "
                     f"{r['working_mib']:.0f} MiB", f"in {r['input_mib']:.0f} + out {r['output_mib']:.0f} MiB", "",
                     flat))
    d = sc["dask"]
    tps, runs = d["targets_per_s"], d["runs"]
    rows.append((f"fit {d['rows']:,} .npy -> .zarr, targets/s: local:2", f"{tps['local:2']:,.0f}",
                 f"{tps['local:1']:,.0f} (local:1)", f"{d['scaling_efficiency']:.0%} efficiency",
                 f">= 80%: {ok(d['scaling_efficiency'] >= 0.8)}"))
    rows.append((f"fit {d['rows']:,}: local:1 vs one process, s", f"{runs['local:1']['seconds']:.1f}",
                 f"{runs['in-process']['seconds']:.1f} (in-process)", f"{d['overhead_local1']:+.0%}",
                 f"<= +15%: {ok(d['overhead_local1'] <= 0.15)}"))
    q = d["quarter_rows"]
    workers, client = runs["local:2"]["worker_peak_mib"], runs["local:2"]["client_peak_mib"]
    rows.append((f"peak RSS, local:2, {d['rows']:,} rows (MiB)", f"workers {max(workers):.0f}, client {client:.0f}",
                 f"{q['rows']:,} rows: {max(q['worker_peak_mib']):.0f}, {q['client_peak_mib']:.0f}", "",
                 "bounded: " + ok(max(workers) <= 1.25 * max(q["worker_peak_mib"]) and client <= 1.25 * q["client_peak_mib"])))
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--example-epochs", type=int, default=3,
                    help="epochs of the example loop to time (100 runs it whole and measures its quality)")
    ap.add_argument("--scale-rows", type=int, default=2_000_000, help="targets of the Dask scale benchmark")
    ap.add_argument("--summary-only", action="store_true",
                    help="rebuild the table and the docs from the saved results without running anything")
    args = ap.parse_args()
    print(summarise() if args.summary_only else main(args.example_epochs, args.scale_rows))
