"""Tables and figures for what pretraining buys: ``pos_payoff.json`` and ``pretraining_scaling.json``
rendered as markdown and PNG (the numbers are the JSON's; nothing is measured here)."""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SIZE_WORDS = {"100": "100", "1000": "1,000", "all": "all (51,527)"}
SIZE_SENTENCES = {"100": 100, "1000": 1000, "all": 51527}  # before any cutting into windows
TASK_WORDS = {"pos_1000": "POS, 1,000 sentences (token accuracy)",
              "ner": "WNUT-16 (entity F1)",
              "sentiment_2000": "sentiment, 2,000 labels (accuracy)"}


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def points(value: float) -> str:
    return f"{100 * value:+.1f}"


def recipe_words(recipe: dict, steps: int, window: int | None = None) -> str:
    pieces = f", {window}-token windows" if window else ""
    return f"{recipe['epochs']:g} ep, batch {recipe['batch_size']}, lr {recipe['lr']:g}{pieces}; {steps} steps"


def commands_section(results: dict) -> list[str]:
    lines = ["## Commands", "", "| command | started (UTC) | load 1/5/15 min | seconds |", "|---|---|---|---|"]
    for c in results.get("commands", []):
        load = " / ".join(f"{x:.1f}" for x in c["loadavg_1_5_15"])
        lines.append(f"| `{' '.join(c['argv'])}` | {c['time_utc']} | {load} | {c.get('seconds', '-')} |")
    return lines


# ================================================================== the POS payoff


def payoff_pairs(results: dict) -> dict:
    """{size: [(seed, pretrained row, random row), ...]} for the cells measured on both sides."""
    by_key = {(c["size"], c["seed"], c["random_init"]): c for c in results.get("cells", [])}
    out: dict = {}
    for (size, seed, random_init), row in sorted(by_key.items()):
        if not random_init and (size, seed, True) in by_key:
            out.setdefault(size, []).append((seed, row, by_key[(size, seed, True)]))
    return out


def payoff_table(results: dict) -> list[str]:
    lines = ["| training sentences | recipe, budget | seed | pretrained | random init | difference |"
             " seconds (pretrained / random) |", "|---|---|---|---|---|---|---|"]
    for size in SIZE_WORDS:
        pairs = payoff_pairs(results).get(size, [])
        for seed, pre, rnd in pairs:
            lines.append(f"| {SIZE_WORDS[size]} | {recipe_words(pre['recipe'], pre['steps'], pre.get('window'))} | {seed} | "
                         f"{pct(pre['test'])} | {pct(rnd['test'])} | {points(pre['test'] - rnd['test'])} | "
                         f"{pre['seconds']:.0f} / {rnd['seconds']:.0f} |")
        if pairs:
            mean_pre = statistics.mean(p["test"] for _, p, _ in pairs)
            mean_rnd = statistics.mean(r["test"] for _, _, r in pairs)
            lines.append(f"| **{SIZE_WORDS[size]}: mean of {len(pairs)} seeds** | | | **{pct(mean_pre)}** | "
                         f"**{pct(mean_rnd)}** | **{points(mean_pre - mean_rnd)}** | |")
    return lines


def search_table(results: dict) -> list[str]:
    lines = ["| training sentences | tried | pretrained: best validation (epoch) | random: best validation "
             "(epoch) | mean |", "|---|---|---|---|---|"]
    rows = results.get("search", [])
    for pre in (r for r in rows if not r["random_init"]):
        rnd = next((r for r in rows if r["random_init"] and r["size"] == pre["size"]
                    and r["changes"] == pre["changes"]), None)
        if rnd is None:
            continue
        tried = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in pre["changes"].items())
        mean = (max(pre["validation"]) + max(rnd["validation"])) / 2
        lines.append(f"| {SIZE_WORDS[pre['size']]} | {tried or 'default'} ({pre['steps']} steps) | "
                     f"{pct(max(pre['validation']))} ({pre['best_epoch']}) | "
                     f"{pct(max(rnd['validation']))} ({rnd['best_epoch']}) | {pct(mean)} |")
    return lines


def probe_table(probe: dict) -> list[str]:
    lines = ["| depth | pretrained | random init | difference |", "|---|---|---|---|"]
    for depth, pre, rnd in zip(probe["depths"], probe["pretrained"], probe["random"]):
        lines.append(f"| {depth} | {pct(pre)} | {pct(rnd)} | {points(pre - rnd)} |")
    return lines


def plot_payoff(results: dict, path: Path) -> None:
    pairs = payoff_pairs(results)
    probe = results.get("probe")
    fig, axes = plt.subplots(1, 2 if probe else 1, figsize=(11 if probe else 6, 4.2), squeeze=False)
    left = axes[0][0]
    for side, index, colour in (("pretrained", 1, "tab:blue"), ("random init", 2, "tab:grey")):
        xs, means = [], []
        for size in SIZE_WORDS:
            if size not in pairs:
                continue
            n = SIZE_SENTENCES[size]
            scores = [100 * cell[index]["test"] for cell in pairs[size]]
            left.scatter([n] * len(scores), scores, color=colour, s=14, alpha=0.6)
            xs.append(n)
            means.append(statistics.mean(scores))
        left.plot(xs, means, "-o", color=colour, label=side)
    left.set_xscale("log")
    left.set_xlabel("labelled training sentences (log scale)")
    left.set_ylabel("test token accuracy (%)")
    left.set_title("POS tagging: pretrained tiny model vs random init")
    left.grid(alpha=0.3)
    left.legend()
    if probe:
        right = axes[0][1]
        x = range(len(probe["depths"]))
        right.bar([i - 0.2 for i in x], [100 * v for v in probe["pretrained"]], 0.4, label="pretrained", color="tab:blue")
        right.bar([i + 0.2 for i in x], [100 * v for v in probe["random"]], 0.4, label="random init", color="tab:grey")
        right.set_xticks(list(x), probe["depths"])
        right.set_ylabel("probe test token accuracy (%)")
        right.set_title(f"frozen features, linear probe ({probe['train_sentences']:,} sentences)")
        right.set_ylim(0, 100)
        right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: dict, md_path: Path, png_path: Path) -> None:
    """pos_payoff.md and pos_payoff.png from the results of ``pos_payoff.py``."""
    start = next((c["start"] for c in results.get("cells", [])), "?")
    lines = ["# What pretraining buys: part-of-speech tagging", "",
             f"Written by `benchmarks/pos_payoff.py report` from `pos_payoff.json`. Pretrained: `{start}`; "
             "random init: the same shape and tokenizer with fresh weights. Token accuracy on the whole "
             "Brown POS test split (3,032 sentences from documents pretraining held out), scored with the "
             "weights of the best validation epoch (500 fixed validation sentences). Both sides of a row: "
             "the same recipe, steps and training sentences (drawn with the seed).", "",
             "## Payoff", "", *payoff_table(results), "", f"![payoff]({png_path.name})", "",
             "## Recipe search (validation only, seed 0)", "",
             "Picked per size: the highest mean of the two sides' best validation accuracy.", "",
             *search_table(results), ""]
    if results.get("probe"):
        probe = results["probe"]
        lines += ["## Frozen-feature probe", "",
                  f"Logistic regression on each depth's vector at every word's first token: "
                  f"{probe['train_sentences']:,} training sentences ({probe['train_words']:,} words), "
                  f"scored on {probe['test_words']:,} test words; random encoder seeded {probe['seed']}.", "",
                  *probe_table(probe), ""]
    md_path.write_text("\n".join(lines + commands_section(results)) + "\n")
    plot_payoff(results, png_path)


# ================================================================== scaling with minutes


def by_minutes(results: dict) -> list[tuple[float, list[tuple[str, dict]]]]:
    """[(minutes, [(run name, entry), ...])]: replicate pretraining runs of one budget together."""
    groups: dict[float, list] = {}
    for key, entry in sorted(results.get("runs", {}).items()):
        groups.setdefault(entry["minutes"], []).append((key, entry))
    return sorted(groups.items())


def group_score(entries: list[dict], task: str) -> tuple[float | None, int]:
    """The mean test score over every (pretraining run, fine-tuning seed) cell, and the cell count."""
    rows = [r["test"] for e in entries for r in e.get("downstream", {}).get(task, {}).values()]
    return (statistics.mean(rows) if rows else None), len(rows)


def paired_difference(entries: list[dict], random_entry: dict, task: str) -> float | None:
    """Mean of (cell - the random-init cell of the same fine-tuning seed): a seed draws the
    training sentences and the head's initial weights, so a cell is compared with its own seed."""
    base = random_entry.get("downstream", {}).get(task, {})
    diffs = [r["test"] - base[seed]["test"] for e in entries
             for seed, r in e.get("downstream", {}).get(task, {}).items() if seed in base]
    return statistics.mean(diffs) if diffs else None


def group_mlm(entries: list[dict]) -> float | None:
    values = [e.get("mlm_accuracy") for e in entries if e.get("mlm_accuracy") is not None]
    return statistics.mean(values) if values else None


def scaling_table(results: dict) -> list[str]:
    """One row per budget: replicate runs averaged, each cell's count in brackets when above one."""
    random_entry = results.get("runs", {}).get("random", {})
    lines = ["| runs | minutes (idle-equivalent) | steps | held-out MLM accuracy | "
             + " | ".join(TASK_WORDS[t] for t in TASK_WORDS) + " |", "|---" * (4 + len(TASK_WORDS)) + "|"]
    for minutes, group in by_minutes(results):
        entries = [e for _, e in group]
        cells = []
        for task in TASK_WORDS:
            score, count = group_score(entries, task)
            difference = None if minutes == 0 else paired_difference(entries, random_entry, task)
            diff = "" if difference is None else f" ({points(difference)})"
            cells.append(f"{pct(score)}{diff}" + (f" [{count} cells]" if count > 1 else ""))
        names = "random init" if minutes == 0 else ", ".join(f"`{key}`" for key, _ in group)
        mlm = pct(group_mlm(entries)) if minutes else "-"
        if minutes and len(entries) > 1:
            mlm += " (" + " / ".join(pct(e.get("mlm_accuracy")) for e in entries) + ")"
        lines.append(f"| {names} | {minutes:g} | {entries[0].get('steps', 0):,} | {mlm} | "
                     + " | ".join(cells) + " |")
    return lines


def plot_scaling(results: dict, path: Path) -> None:
    """Left: MLM accuracy per run; right: each task's mean per budget (line) and every cell (dots)."""
    groups = by_minutes(results)
    pretrained = [(m, [e for _, e in g if e.get("mlm_accuracy") is not None]) for m, g in groups if m > 0]
    pretrained = [(m, es) for m, es in pretrained if es]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot([m for m, es in pretrained], [100 * group_mlm(es) for m, es in pretrained], "-", color="tab:purple")
    left.plot([m for m, es in pretrained for _ in es], [100 * e["mlm_accuracy"] for _, es in pretrained for e in es],
              "o", color="tab:purple")
    left.set_xlabel("pretraining minutes (step budget of N idle minutes)")
    left.set_ylabel("held-out masked-token accuracy (%)")
    left.set_title("pretraining: tiny model on Brown (dots: runs)")
    left.grid(alpha=0.3)
    for task, colour in zip(TASK_WORDS, ("tab:blue", "tab:orange", "tab:green")):
        means = [(m, group_score([e for _, e in g], task)[0]) for m, g in groups]
        means = [(m, score) for m, score in means if score is not None]
        right.plot([m for m, _ in means], [100 * s for _, s in means], "-", color=colour, label=TASK_WORDS[task])
        dots = [(m, r["test"]) for m, g in groups for _, e in g
                for r in e.get("downstream", {}).get(task, {}).values()]
        right.plot([m for m, _ in dots], [100 * s for _, s in dots], ".", color=colour, alpha=0.6)
        if means and means[0][0] == 0:
            right.axhline(100 * means[0][1], color=colour, linestyle="--", alpha=0.6)
    right.set_xlabel("pretraining minutes (0 = random init; dashed: random init)")
    right.set_ylabel("test score (%)")
    right.set_title("downstream, fine-tuned at equal steps (dots: cells)")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_scaling_report(results: dict, md_path: Path, png_path: Path) -> None:
    """pretraining_scaling.md and .png from the results of ``pretraining_scaling.py``."""
    lines = ["# How the payoff grows with pretraining minutes", "",
             "Written by `benchmarks/pretraining_scaling.py` from `pretraining_scaling.json`. Minutes are "
             "step budgets (11,302 steps = 10 idle minutes of the tiny recipe on 2 cores), each run with "
             "its own schedule. MLM accuracy: the run's final evaluation over every held-out validation "
             "block (`final_eval.json`). Budgets run more than once list each run's accuracy. Downstream: test "
             "scores, the mean over every (pretraining run, fine-tuning seed) cell measured, the count in "
             "brackets when above one; in parentheses, the mean difference in points of each cell to the random-init "
             "cell of the same fine-tuning seed; the recipes are in the JSON.", "",
             *scaling_table(results), "", f"![scaling]({png_path.name})", ""]
    md_path.write_text("\n".join(lines + commands_section(results)) + "\n")
    plot_scaling(results, png_path)
