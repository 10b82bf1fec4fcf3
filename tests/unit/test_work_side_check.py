"""The working-copy check's scoring helpers (the check itself needs `make data`)."""

from __future__ import annotations

import math

from bench.work_side_check import labelled_accuracy, presence_f1


def row(labels, before, after, quality="good", mos=4.0, grades=("good", "good"), scores=(4.0, 4.0)):
    return {
        "labels": labels,
        "quality": quality,
        "mos": mos,
        "before": {"types": set(before), "grade": grades[0], "score": scores[0]},
        "after": {"types": set(after), "grade": grades[1], "score": scores[1]},
    }


def test_presence_f1_counts_labelled_rows_only_per_path():
    """One hit and one miss before, two hits after; unlabelled rows do not count."""
    rows = [
        row({"Noise", "Motion blur"}, {"Noise"}, {"Noise", "Motion blur"}),
        row(None, {"Noise"}, set()),
    ]
    assert presence_f1(rows, "before") == 2 / 3
    assert presence_f1(rows, "after") == 1.0


def test_labelled_accuracy_compares_grades_and_ranks_scores():
    """Grades right on 2 of 3 rows before, 3 of 3 after; scores in MOS order give SRCC 1."""
    rows = [
        row(set(), (), (), quality="bad", mos=1.5, grades=("poor", "bad"), scores=(1.0, 1.2)),
        row(set(), (), (), quality="fair", mos=3.0, grades=("fair", "fair"), scores=(3.0, 2.9)),
        row(set(), (), (), quality="good", mos=4.0, grades=("good", "good"), scores=(4.0, 4.1)),
    ]
    grade_before, srcc_before = labelled_accuracy(rows, "before")
    grade_after, _ = labelled_accuracy(rows, "after")
    assert math.isclose(grade_before, 2 / 3) and grade_after == 1.0
    assert math.isclose(srcc_before, 1.0)


def test_too_few_labelled_rows_give_nan_not_a_number_that_looks_measured():
    assert all(math.isnan(v) for v in labelled_accuracy([row(None, (), ())], "before"))
