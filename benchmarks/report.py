"""Turn ``results.json`` into the Markdown tables of ``results.md`` (quoted in docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path


def _ok(met: bool) -> str:
    return "yes" if met else "**no**"


def _ratio(summary: dict) -> str:
    return (f"**{summary['ratio_median']:.2f}x** "
            f"({summary['ratio_min']:.2f}-{summary['ratio_max']:.2f})")


def speed_table(results: dict, sections=("pretrain", "inference", "finetune")) -> list[str]:
    lines = [
        "| benchmark | minirob tokens/s | transformers tokens/s | speed-up median (min-max) "
        "| pairs | target | met | load avg |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for section in sections:
        for entry in results.get(section, []):
            s = entry["summary"]
            load = f"{entry['started']['loadavg']:.1f}-{entry['ended']['loadavg']:.1f}"
            lines.append(
                f"| {s['name']} | {s['minirob_per_s']:,.0f} | {s['transformers_per_s']:,.0f} | "
                f"{_ratio(s)} | {s['repeats']} | >= {entry['target']:.1f}x | "
                f"{_ok(s['ratio_median'] >= entry['target'])} | {load} |"
            )
    return lines


def compiled_table(results: dict) -> list[str]:
    """minirob compiled (minirob.compiled.compile_model) vs minirob eager, compile time apart."""
    rows = results.get("compiled", [])
    if not rows:
        return []
    lines = [
        "`minirob.compiled.compile_model` (embeddings, encoder layers and head compiled in place, "
        "torch's automatic dynamic shapes) against the same model eager, interleaved pairs over 4 "
        "batches whose masked-row counts differ. Compile time: the compiled model's first pass "
        "over the 4 batches minus the eager model's; ratio `t_eager / t_compiled` (> 1: compiling "
        "pays).",
        "",
        "| step | eager tokens/s | compiled tokens/s | speed-up median (min-max) | pairs "
        "| compile time | load avg |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        s = row["summary"]
        load = f"{row['started']['loadavg']:.1f}-{row['ended']['loadavg']:.1f}"
        lines.append(
            f"| {row['name']} | {s['eager_tokens_per_s']:,.0f} | {s['compiled_tokens_per_s']:,.0f} "
            f"| {_ratio(s)} | {s['repeats']} | {row['compile_s']:.0f} s | {load} |"
        )
    return lines


def memory_table(results: dict) -> list[str]:
    rows = results.get("memory", [])
    if not rows:
        return []
    kind = rows[0]["minirob"]["measure"]
    lines = [
        f"Peak memory, {kind}, one fresh process per cell (both libraries imported in each); "
        "\"increase\" is the peak minus the memory just before the first step.",
        "",
        "| workload | minirob peak MiB | transformers peak MiB | minirob increase | "
        "transformers increase | minirob <= transformers |",
        "|---|---:|---:|---:|---:|---|",
    ]
    names = {"pretrain": "pretrain step, small", "inference": "inference, roberta-base",
             "finetune": "fine-tune step, roberta-base"}
    for row in rows:
        case, ours, theirs = row["case"], row["minirob"], row["transformers"]
        lines.append(
            f"| {names[case['bench']]}, {case['batch']}x{case['length']}, {case['precision']} | "
            f"{ours['peak_mb']:,.0f} | {theirs['peak_mb']:,.0f} | {ours['increase_mb']:,.0f} | "
            f"{theirs['increase_mb']:,.0f} | {_ok(ours['peak_mb'] <= theirs['peak_mb'])} |"
        )
    return lines


def utilisation_table(results: dict) -> list[str]:
    rows = results.get("utilisation", [])
    if not rows:
        return []
    lines = [
        "FLOPs counted by `torch.utils.flop_counter.FlopCounterMode` (matmuls and attention, "
        f"forward + backward). Peak: best of 3 square {rows[0].get('matmul_size') or 1024} matmuls "
        "at the same precision and threads, measured right before every timed pair (the machine "
        "is shared, so the peak available moves); utilisation is per pair, median (min-max).",
        "",
        "| pretrain step | matmul GFLOP/s median (max) | side | GFLOP per step "
        "| GFLOP/s (median step) | utilisation |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        for side in ("minirob", "transformers"):
            u = row[side]
            lines.append(
                f"| {row['precision']} | {row['matmul_flops_median'] / 1e9:.0f} "
                f"({row['matmul_flops_max'] / 1e9:.0f}) | {side} | "
                f"{u['flops_per_step'] / 1e9:.1f} | {u['flops_per_s_median'] / 1e9:.1f} | "
                f"{u['utilisation_median']:.0%} ({u['utilisation_min']:.0%}-"
                f"{u['utilisation_max']:.0%}) |"
            )
    return lines


def quality_table(results: dict) -> list[str]:
    quality = results.get("quality")
    if not quality:
        return []
    lines = [quality["description"], "",
             "| training time (each model's own clock) | minirob accuracy | transformers accuracy "
             "| minirob steps | transformers steps |",
             "|---|---:|---:|---:|---:|"]
    for point in quality["checkpoints"]:
        ours, theirs = point["minirob"], point["transformers"]
        lines.append(
            f"| {point['minutes']:g} min | {ours['accuracy']:.1%} | {theirs['accuracy']:.1%} | "
            f"{ours['step']} | {theirs['step']} |"
        )
    lines += ["", f"Wall time {quality['wall_minutes']:.1f} min; load average "
              f"{quality['started']['loadavg']:.1f} at start, {quality['ended']['loadavg']:.1f} "
              "at end."]
    return lines


def device_section(device: str, results: dict) -> list[str]:
    m = results.get("machine", {})
    lines = [f"## {device}", ""]
    if results.get("toy"):
        lines += ["**Toy shapes (smoke test): these numbers mean nothing.**", ""]
    lines += [f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores visible, "
              f"{m.get('torch_threads', '?')} torch threads" + (f", GPU {m['gpu']}" if "gpu" in m
                                                               else "")
              + f"; torch {m.get('torch', '?')}, transformers {m.get('transformers', '?')}.", ""]
    if results.get("note"):
        lines += [results["note"], ""]
    blocks = [("Speed (interleaved pairs, same inputs and weights)", speed_table(results)),
              ("Dense path: logits at every position, forward + backward, no optimiser",
               speed_table(results, ("dense",))),
              ("Compiled step (minirob compiled vs eager)", compiled_table(results)),
              ("Peak memory", memory_table(results)),
              ("Utilisation of the pretraining step", utilisation_table(results)),
              ("Time to quality (pretraining on Brown)", quality_table(results))]
    notes = results.get("section_notes", {})
    for (title, table), section in zip(blocks, (None, "dense", "compiled", "memory",
                                                "utilisation", "quality")):
        if len(table) > 2 or (table and not title.startswith(("Speed", "Dense"))):
            note = [notes[section], ""] if section in notes else []
            lines += [f"### {title}", "", *note, *table, ""]
    return lines


def render(everything: dict) -> str:
    lines = [
        "# minirob vs transformers: benchmark results",
        "",
        "Written by `python -m benchmarks.run` (see its `--help`); ratios are per-pair "
        "`t_transformers / t_minirob` of steps timed back to back on the same inputs, so a busy "
        "machine slows both sides of a pair. Median, with min-max over the pairs.",
        "",
    ]
    for device, results in everything.items():
        lines += device_section(device, results)
    return "\n".join(lines) + "\n"


LOG_MARKER = "<!-- measurement-log:"  # results.md's hand-written log starts at this line


def write_markdown(everything: dict, path: str | Path) -> None:
    """Write the tables; keep the hand-written measurement log that follows them, if any."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    log = old[old.index(LOG_MARKER):] if LOG_MARKER in old else ""
    path.write_text(render(everything) + log)
