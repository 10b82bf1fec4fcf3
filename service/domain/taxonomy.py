"""The ViDA-UGC / MIPI 2025 vocabulary, kept exactly so metrics compare.

Distortion names, severities and grades are the challenge's exact strings.
Fine levels follow iDetex: ten linear bins over the 1-5 MOS range, two per grade.
"""

from __future__ import annotations

from typing import Final

DISTORTIONS: Final[tuple[str, ...]] = (
    "Low clarity",
    "Noise",
    "Underexposure",
    "Overexposure",
    "Blocking artifacts",
    "Edge aliasing effect",
    "Edge ringing effect",
    "Out of focus blur",
    "Motion blur",
    "Meaningless solid color",
)
NUM_DISTORTIONS: Final = len(DISTORTIONS)
DISTORTION_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(DISTORTIONS)}

SEVERITIES: Final[tuple[str, ...]] = ("slight", "moderate", "severe")

# Worst to best. Thresholds on a 1-5 MOS: >=4.2 excellent, >=3.4 good, >=2.6 fair, >=1.8 poor.
GRADES: Final[tuple[str, ...]] = ("bad", "poor", "fair", "good", "excellent")
GRADE_THRESHOLDS: Final[tuple[float, ...]] = (1.8, 2.6, 3.4, 4.2)

# iDetex 10-level scale: a..j, linear over [1, 5], bin width 0.4; level a is the worst.
FINE_LEVELS: Final[tuple[str, ...]] = tuple("abcdefghij")
MOS_MIN: Final = 1.0
MOS_MAX: Final = 5.0


def canonical_distortion(name: str) -> str:
    """Return the exact taxonomy string for a case-insensitive name.

    Raises KeyError for a name outside the taxonomy.
    """
    wanted = name.strip().lower()
    for d in DISTORTIONS:
        if d.lower() == wanted:
            return d
    raise KeyError(name)


def canonical_severity(name: str) -> str:
    wanted = name.strip().lower()
    if wanted not in SEVERITIES:
        raise KeyError(name)
    return wanted


def mos_to_grade(mos: float) -> str:
    """Map a 1-5 MOS to the 5-level grade with the challenge thresholds."""
    idx = sum(1 for t in GRADE_THRESHOLDS if mos >= t)
    return GRADES[idx]


def mos_to_fine_index(mos: float) -> int:
    """Map a 1-5 MOS to a fine level index 0..9 (a..j)."""
    clipped = min(max(mos, MOS_MIN), MOS_MAX)
    return min(int((clipped - MOS_MIN) / 0.4 + 1e-9), 9)


def fine_index_to_grade(index: int) -> str:
    """Two fine levels per grade: a,b -> bad ... i,j -> excellent."""
    if not 0 <= index <= 9:
        raise ValueError(f"fine level index out of range: {index}")
    return GRADES[index // 2]


def fine_index_to_level(index: int) -> str:
    return FINE_LEVELS[index]


def severity_from_value(value: float) -> str:
    """Map a continuous severity (0 slight .. 2 severe) to its name."""
    if value < 0.5:
        return "slight"
    if value < 1.5:
        return "moderate"
    return "severe"
