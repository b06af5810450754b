# An independent check of an `enforcer backtest` report on the labelled account tables: recomputes precision, recall and F1 with scikit-learn from the per-account predictions and labels read from the original CSV files, and fails on any difference from the JSON report.
"""Check a backtest report of the account tables with scikit-learn.

Reads the labels itself, from the `bot` column of the original CSV files
(not from the predictions file's `label` column), and the engine's
per-account predictions (`enforcer backtest --predictions FILE`), and
computes at each severity (review, limit, block):

* the entity figures: an account counts as acted on at a severity when a
  decision at that severity or above carried an action on it
  (`acted_severity`), as the report's `candidate.by_severity[].entities`;
* the event figures: an account counts as flagged when its snapshot's
  decision reached the severity (`decided_severity`), as the report's
  `candidate.by_severity[].events`; checked only when every account had
  exactly one judged snapshot, which is what makes the two the same count.

Each is printed beside the report's figure, and the script exits non-zero
if any differs by more than 1e-9 (counts must be equal). ROC AUC and
average precision of `max_score` are printed for information.

Accounts are keyed as the mapping (`examples/backtest/accounts.toml`)
keys them: `account:<screen_name>`, the cell trimmed and one pair of
surrounding double quotes removed. An account listed in both files (the
tables disagree about a few) is counted as a bot, as the backtest labels
an entity abusive when any of its events is.

Usage (from the repository root, after the backtest in README.md):

    python3 examples/backtest/check_with_sklearn.py \\
        --bots ../shared/data/accounts/twitter-bots.csv \\
        --humans ../shared/data/accounts/twitter-humans.csv \\
        --report /tmp/fake-profile/accounts-report.json \\
        --predictions /tmp/fake-profile/accounts-predictions.csv
"""

import argparse
import csv
import json
import sys

from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

SEVERITIES = ["allow", "review", "limit", "block"]
JUDGED = ["review", "limit", "block"]
TOLERANCE = 1e-9


def clean(cell):
    """A cell as the mapping reads it: trimmed, one pair of quotes removed."""
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == '"' and cell[-1] == '"':
        cell = cell[1:-1].strip()
    return cell


def read_labels(bots_path, humans_path):
    """`account:<screen_name>` -> True for a bot, from the `bot` column."""
    labels = {}
    conflicts = 0
    for path in (bots_path, humans_path):
        with open(path, encoding="utf-8-sig", newline="") as file:
            for row in csv.DictReader(file):
                entity = "account:" + clean(row["screen_name"])
                value = clean(row["bot"])
                if value not in ("0", "1"):
                    sys.exit(f"{path}: {entity} has bot = {value!r}")
                bot = value == "1"
                if entity in labels and labels[entity] != bot:
                    conflicts += 1
                labels[entity] = labels.get(entity, False) or bot
    return labels, conflicts


def read_predictions(path):
    """`entity` -> (acted severity, decided severity, max score)."""
    predictions = {}
    with open(path, encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            if row["entity"] in predictions:
                sys.exit(f"{path}: {row['entity']} appears twice")
            predictions[row["entity"]] = (
                SEVERITIES.index(row["acted_severity"]),
                SEVERITIES.index(row["decided_severity"]),
                float(row["max_score"]),
            )
    return predictions


def figures(y_true, y_pred):
    """Confusion counts and ratios, zero where undefined (as the report)."""
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[False, True]).ravel()
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="binary", pos_label=True, zero_division=0
    )
    return {
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "tn": int(tn),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


def compare(what, ours, metrics):
    """Print ours beside the report's; return the differences."""
    theirs = dict(metrics["confusion"])
    theirs.update(
        precision=metrics["precision"], recall=metrics["recall"], f1=metrics["f1"]
    )
    problems = []
    for key in ("tp", "fp", "fn", "tn"):
        if ours[key] != theirs[key]:
            problems.append(f"{what} {key}: scikit-learn {ours[key]}, report {theirs[key]}")
    for key in ("precision", "recall", "f1"):
        if abs(ours[key] - theirs[key]) > TOLERANCE:
            problems.append(
                f"{what} {key}: scikit-learn {ours[key]!r}, report {theirs[key]!r}"
            )
    print(
        f"  {what:<18} scikit-learn P {ours['precision']:.4f} R {ours['recall']:.4f} "
        f"F1 {ours['f1']:.4f} (tp {ours['tp']} fp {ours['fp']} fn {ours['fn']} tn {ours['tn']})"
    )
    print(
        f"  {'':<18} report       P {theirs['precision']:.4f} R {theirs['recall']:.4f} "
        f"F1 {theirs['f1']:.4f} (tp {theirs['tp']} fp {theirs['fp']} fn {theirs['fn']} "
        f"tn {theirs['tn']}){'  MISMATCH' if problems else ''}"
    )
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", default="../shared/data/accounts/twitter-bots.csv")
    parser.add_argument("--humans", default="../shared/data/accounts/twitter-humans.csv")
    parser.add_argument("--report", default="/tmp/fake-profile/accounts-report.json")
    parser.add_argument(
        "--predictions", default="/tmp/fake-profile/accounts-predictions.csv"
    )
    args = parser.parse_args()

    labels, conflicts = read_labels(args.bots, args.humans)
    predictions = read_predictions(args.predictions)
    with open(args.report, encoding="utf-8") as file:
        report = json.load(file)
    candidate = report["candidate"]

    problems = []
    if set(labels) != set(predictions):
        only_csv = sorted(set(labels) - set(predictions))[:5]
        only_pred = sorted(set(predictions) - set(labels))[:5]
        sys.exit(
            f"the accounts differ: only in the CSV files {only_csv}, "
            f"only in the predictions {only_pred}"
        )
    entities = sorted(labels)
    y_true = [labels[e] for e in entities]
    acted = [predictions[e][0] for e in entities]
    decided = [predictions[e][1] for e in entities]
    scores = [predictions[e][2] for e in entities]
    bots = sum(y_true)
    print(
        f"{len(entities)} accounts ({bots} bots, {len(entities) - bots} humans; "
        f"{conflicts} listed in both files, counted as bots)"
    )
    summary = report["input"]
    for key, ours in (("entities", len(entities)), ("abusive_entities", bots)):
        if summary[key] != ours:
            problems.append(f"input.{key}: here {ours}, report {summary[key]}")

    # With one judged snapshot per account, event figures are account figures.
    judged_events = summary["events"] - summary["duplicate_ids"]
    one_each = judged_events == len(entities)
    if not one_each:
        print(f"  ({judged_events} judged events for {len(entities)} accounts: "
              "event figures not checked)")

    by_severity = {s["severity"]: s for s in candidate["by_severity"]}
    for severity in JUDGED:
        level = SEVERITIES.index(severity)
        print(f"at {severity}:")
        ours = figures(y_true, [a >= level for a in acted])
        problems += compare("entities acted on", ours, by_severity[severity]["entities"])
        if one_each:
            ours = figures(y_true, [d >= level for d in decided])
            problems += compare(
                "accounts decided", ours, by_severity[severity]["events"]
            )

    positive = SEVERITIES.index(report["positive"])
    print(f"headline (at {report['positive']}, the report's --positive):")
    ours = figures(y_true, [a >= positive for a in acted])
    problems += compare("entities acted on", ours, candidate["entities"])
    if one_each:
        ours = figures(y_true, [d >= positive for d in decided])
        problems += compare("accounts decided", ours, candidate["events"])

    print("for information, ranking accounts by max_score:")
    print(f"  ROC AUC {roc_auc_score(y_true, scores):.4f}")
    print(f"  average precision {average_precision_score(y_true, scores):.4f}")

    if problems:
        print("MISMATCH:", *problems, sep="\n  ")
        return 1
    print(f"every figure agrees with the report (within {TOLERANCE:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
