"""The one registry of model specs and `create`, the zoo's single entry point.

Reference figures come from `shared/reference/models.md` (the papers, the authors' releases, timm's
re-evaluations); each carries its source so a table can say where a number came from.
"""

from __future__ import annotations

import difflib
from functools import partial
from pathlib import Path

from torch import nn

from model_zoo import ablation, baselines, mobileformer, mobileone, probes
from model_zoo.errors import CheckpointError, UnknownModelError
from model_zoo.names import check_name
from model_zoo.reparam import reparameterize
from model_zoo.spec import FORMS, DeployedGraph, Form, ModelSpec, Preprocess, Reference
from model_zoo.weights import is_fused_state, load_into, read_state_dict, rename

TIMM_PREFIX = "timm:"
_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    check_name("model", spec.name)
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def list_specs() -> list[ModelSpec]:
    return list(_REGISTRY.values())


def mission_models() -> list[str]:
    """The models of the default sweep."""
    return [s.name for s in _REGISTRY.values() if s.in_mission]


def is_registered(name: str) -> bool:
    """Whether `name` is a registered model (a `timm:` name never is: it is built on demand)."""
    return name in _REGISTRY


def get_spec(name: str) -> ModelSpec:
    """Look a name up; `timm:<name>` builds any timm architecture; unknown names suggest close ones."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.startswith(TIMM_PREFIX):
        return _timm_spec(name[len(TIMM_PREFIX):])
    close = closest(name, list(_REGISTRY))
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"unknown model {name!r}{hint} (`bench list models` lists them; `timm:<name>` builds any timm model)")


def closest(word: str, candidates: list[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """The `n` candidates most like `word`, best first, ties in name order."""
    scored = [(difflib.SequenceMatcher(None, word, c).ratio(), c) for c in candidates]
    return [c for score, c in sorted(scored, key=lambda t: (-t[0], t[1])) if score >= cutoff][:n]


def _timm_spec(arch: str) -> ModelSpec:
    names = baselines.timm_available_names()
    if arch not in names:
        close = closest(arch, names, cutoff=0.6)
        hint = f"; did you mean {', '.join(TIMM_PREFIX + c for c in close)}?" if close else ""
        raise UnknownModelError(f"timm has no model {arch!r}{hint}")
    return ModelSpec(
        name=TIMM_PREFIX + arch,
        family="timm",
        build=lambda form, num_classes: baselines.build_timm(arch, num_classes),
        preprocess=baselines.timm_preprocess(arch),
        reference=Reference(source="timm (no reference figures registered)"),
    )


def create(name: str, form: Form = "fused", weights: str | Path | None = None, num_classes: int | None = None) -> nn.Module:
    """Build `name` in `form` ("train" or "fused"), optionally loading a local checkpoint, in eval mode.

    A MobileOne checkpoint may be fused or unfused: an unfused one loads into the training form,
    which is then fused if `form == "fused"`; a fused one cannot give the training form back.
    """
    if form not in FORMS:
        raise UnknownModelError(f"unknown form {form!r}; use one of {', '.join(FORMS)}")
    spec = get_spec(name)
    if weights is None:
        return spec.build(form, num_classes or spec.num_classes).eval()
    state = rename(read_state_dict(weights), spec.key_maps)
    num_classes = num_classes or head_classes(spec.build("fused", spec.num_classes), state) or spec.num_classes
    build_form: Form = form
    if spec.fused_state_marker:
        build_form = "fused" if is_fused_state(state, spec.fused_state_marker) else "train"
        if build_form == "fused" and form == "train":
            raise CheckpointError(
                f"{weights} holds the fused (inference) form of {name}, which cannot be unfused; "
                "use form='fused', or the unfused checkpoint for the training form"
            )
    model = load_into(spec.build(build_form, num_classes), state, weights).eval()
    return reparameterize(model) if build_form != form else model


def head_classes(model: nn.Module, state: dict) -> int | None:
    """The class count a checkpoint's head was trained for (its last linear layer's rows), so a network
    fine-tuned on 10 classes loads without every command being told `--num-classes`."""
    heads = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    weight = state.get(heads[-1] + ".weight") if heads else None
    return int(weight.shape[0]) if weight is not None and weight.ndim == 2 else None


_MOBILEONE_TOP1 = {"s0": 71.4, "s1": 75.9, "s2": 77.4, "s3": 78.1, "s4": 79.4}
_MOBILEONE_PARAMS = {  # (unfused, fused) from the authors' state dicts
    "s0": (5_293_272, 2_078_504), "s1": (4_825_192, 4_764_840), "s2": (7_884_648, 7_808_168),
    "s3": (10_170_600, 10_078_312), "s4": (14_951_248, 14_838_352),
}
_MOBILEONE_MACS = {"s0": (275.2, 275), "s1": (825.1, 825), "s2": (1298.5, 1299), "s3": (1895.9, 1896), "s4": (2979.4, 2978)}

for _v in mobileone.VARIANTS:
    register(ModelSpec(
        name=f"mobileone_{_v}",
        family="mobileone",
        build=partial(lambda v, form, num_classes: mobileone.build(v, form, num_classes), _v),
        reference=Reference(
            params=_MOBILEONE_PARAMS[_v][1], params_train=_MOBILEONE_PARAMS[_v][0],
            macs_m=_MOBILEONE_MACS[_v][0], macs_paper_m=_MOBILEONE_MACS[_v][1], top1=_MOBILEONE_TOP1[_v],
            source="Vasu et al. CVPR 2023; top-1 from apple/ml-mobileone",
        ),
        preprocess=Preprocess(crop_pct=0.875, interpolation="bilinear"),
        reparameterizable=True,
        fused_graph=DeployedGraph(forbids=("add", "batchnorm")),  # branches summed and BN: all folded away
        fused_state_marker="reparam_conv",  # the authors' name for the one fused conv of a block
        key_maps=(mobileone.timm_to_authors,),
        in_mission=True,
        description=f"MobileOne-{_v.upper()}",
    ))

_MOBILEFORMER_REF = {  # params (authors' state dict), MACs counted (fvcore convention) / paper, top-1 (paper)
    "508m": (13_976_976, 510.6, 508, 79.3), "294m": (11_422_648, 295.4, 294, 77.9),
    "214m": (9_425_920, 215.3, 214, 76.7), "151m": (7_595_828, 152.0, 151, 75.2),
    "96m": (4_585_252, 96.3, 96, 72.8), "52m": (3_469_092, 51.8, 52, 68.7), "26m": (3_232_788, 26.0, 26, 64.0),
}
for _v, (_p, _macs, _paper, _top1) in _MOBILEFORMER_REF.items():
    register(ModelSpec(
        name=f"mobileformer_{_v}",
        family="mobileformer",
        build=partial(lambda v, form, num_classes: mobileformer.build(v, form, num_classes), _v),
        reference=Reference(
            params=_p, macs_m=_macs, macs_paper_m=_paper, top1=_top1,
            source="Chen et al. CVPR 2022 (MACs count norm layers, fvcore convention)",
        ),
        preprocess=Preprocess(crop_pct=0.875, interpolation="bilinear"),
        in_mission=_v in ("294m", "508m"),
        description=f"Mobile-Former-{_v.upper()}",
    ))

for _name, _p, _macs, _top1, _desc in (
    ("mobilenetv2_100", 3_504_872, 300.8, 72.0, "MobileNetV2 1.0 (timm)"),
    ("efficientnet_b0", 5_288_548, 385.8, 77.1, "EfficientNet-B0 (timm)"),
):
    register(ModelSpec(
        name=_name,
        family="baseline",
        build=partial(lambda arch, form, num_classes: baselines.build_timm(arch, num_classes), _name),
        reference=Reference(params=_p, macs_m=_macs, top1=_top1, source="the model's paper; params/MACs counted on timm's build"),
        preprocess=baselines.timm_preprocess(_name),
        in_mission=True,
        description=_desc,
    ))


for _study, (_names, _) in ablation.STUDIES.items():
    for _n in _names:
        _cfg = ablation.variant_cfg(_study, _n)
        register(ModelSpec(
            name=ablation.model_name(_study, _n),
            family="ablation",
            build=partial(lambda cfg, form, num_classes: ablation.AblationNet(cfg, num_classes), _cfg),
            reference=Reference(source="MobileOne paper, Tables 2-3 (network layout ours; see model_zoo/ablation.py)"),
            description=f"30-layer ablation net, {_study} variant {_n}",
        ))


register(ModelSpec(
    name=probes.NAME, family="probe", build=lambda form, num_classes: probes.GemmProbe(num_classes),
    reference=Reference(source="onebench: the machine's GEMM ceiling per runtime (model_zoo/probes.py)"),
    preprocess=Preprocess(input_size=probes.SIZE), num_classes=probes.CHANNELS,
    description="not a backbone: one 1024x1024x1024 GEMM as a 1x1 conv, each runtime's GEMM peak",
))


def macs_convention(spec: ModelSpec) -> str:
    """The counting convention under which the spec's reference MACs were taken."""
    return "fvcore" if spec.family == "mobileformer" else "matmul"
