"""Turn `bench run` options into a checked job list and protocol, failing early on bad input."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import model_zoo
from backends import int8_recipe, registry
from backends.options import RECIPE, ConfigError, parse_cli_options
from harness.errors import HarnessError
from harness.listing.backends import available_cpu_backends
from harness.measure.jobs import Job, plan
from harness.measure.protocol import ProtocolConfig, preset
from harness.measure.reference import NAMES as REFERENCES
from harness.measure.selection import Selection
from model_zoo.preprocess import MIN_INPUT
from model_zoo.registry import closest

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
DEVICES = ("cpu", "cuda", "iphone")  # iphone: Core ML on an attached phone, through a cluster node (a Mac)


CI_TARGETS = (0.001, 0.5)  # --ci-target: from ±0.1% (hours on a quiet machine) to ±50% (anything repeats)


def protocol_from_options(name: str = "default", repeats: int | None = None, reference: str | None = None,
                          ci_target: float | None = None, counted: bool = False) -> ProtocolConfig:
    """The protocol of a command's `--preset NAME` (checked by `harness.cli.common.preset_of`), `--repeats`,
    `--reference` and `--ci-target` (the p50's CI half-width the stop rule aims at, a fraction)."""
    if repeats is not None and repeats < 1:
        raise HarnessError(f"--repeats must be at least 1, not {repeats}")
    if reference is not None:
        check_choice("reference", reference, ("auto", "none", *REFERENCES))
    if ci_target is not None and not CI_TARGETS[0] <= ci_target <= CI_TARGETS[1]:
        raise HarnessError(f"--ci-target is the CI half-width to aim at, a fraction between {CI_TARGETS[0]:g} and "
                           f"{CI_TARGETS[1]:g} (0.01 = ±1%), not {ci_target:g}")
    return preset(name, repeats=repeats, reference=reference, target_rel_ci=ci_target, counted=counted or None)


DEFAULT_THREADS = 1  # the count that repeats on shared VMs (docs/protocol.md, "Threads")


def threads_option(threads: int | None) -> int:
    """`--threads`: 1 by default; never 0 or fewer, never more than this machine's logical cores (more
    threads than cores time the scheduler, not the model)."""
    if threads is None:
        return DEFAULT_THREADS
    cores = os.cpu_count() or 1
    if threads < 1:
        raise HarnessError(f"--threads must be at least 1, not {threads}")
    if threads > cores:
        raise HarnessError(f"--threads {threads} is more than the {cores} logical cores here; pass at most {cores}")
    return threads


# A lower bound on one inference's memory: the input and the widest early activations, about four inputs'
# worth in these networks (MobileOne-S0's first stage: 48 x 112 x 112 floats per 3 x 224 x 224 image).
ACTIVATION_FACTOR = 4


def check_batch_memory(batch: int, input_size: int) -> None:
    """Refuse, before any work, a batch whose input and early activations alone exceed the free memory."""
    import psutil

    need = batch * 3 * input_size**2 * 4 * ACTIVATION_FACTOR
    free = psutil.virtual_memory().available
    if need > free:
        largest = max(1, free // (3 * input_size**2 * 4 * ACTIVATION_FACTOR))
        raise HarnessError(f"--batch {batch} needs at least {need / 2**30:.1f} GiB at {input_size}x{input_size} (input "
                           f"and early activations), more than the {free / 2**30:.1f} GiB free here; pass at most "
                           f"--batch {largest}")


def check_input_size(size: int) -> int:
    if size < MIN_INPUT:
        raise HarnessError(f"--input-size must be at least {MIN_INPUT} (every network of the zoo downsamples "
                           f"{MIN_INPUT}x), not {size}")
    return size


def check_weights(model: str, form: str, weights: str | None) -> dict[str, tuple[int, ...]]:
    """Load the checkpoint into the model once before any job starts: a missing, unreadable or mismatched
    file is one line now, not an error record per job after a sweep. Returns the network's shapes."""
    return {k: tuple(v.shape) for k, v in model_zoo.create(model, form=form, weights=weights).state_dict().items()}


def check_same_network(model: str, sides: dict[str, str | None]) -> None:
    """Two sides of one comparison (`bench ab`: option -> checkpoint or None for the model's own) must be one
    network in shape: a 10-class head against a 1000-class one is two deployments, not a speed change."""
    shapes = {option: check_weights(model, "fused", path) for option, path in sides.items()}
    (a, first), (b, second) = shapes.items()
    differ = sorted(k for k in first.keys() | second.keys() if first.get(k) != second.get(k))
    if differ:
        k = differ[0]
        said = {opt: (path or f"{model}'s own weights") for opt, path in sides.items()}
        raise HarnessError(f"the two sides are different networks ({said[a]}: {k} {first.get(k)}; {said[b]}: "
                           f"{second.get(k)}; {len(differ)} tensor(s) differ); compare checkpoints of one shape")


def check_choice(kind: str, value: str, allowed: list[str] | tuple[str, ...]) -> None:
    if value not in allowed:
        near = closest(value, list(allowed))
        hint = f"; did you mean {near[0]}?" if near else ""
        raise HarnessError(f"unknown {kind} {value!r}{hint} (choose from {', '.join(allowed)})")


def jobs(selection: Selection, offered: list[str] | None = None) -> list[Job]:
    """The selection's jobs, checked. Without backends: every available CPU backend of this machine, or of
    `offered` (the backends a cluster's nodes have)."""
    models, backends, precisions = list(selection.models), list(selection.backends), list(selection.precisions)
    batches, compute_units, input_size = list(selection.batches), list(selection.compute_units), selection.input_size
    threads, device, form, weights = selection.threads, selection.device, selection.form, selection.weights
    models = models or model_zoo.mission_models()
    sizes = {m: model_zoo.get_spec(m).input_size for m in models}  # unknown names fail here, with suggestions
    if input_size is not None:
        sizes = dict.fromkeys(models, check_input_size(input_size))
    for b in backends or []:
        check_choice("backend", b, registry.names())
    for p in precisions or []:
        check_choice("precision", p, PRECISIONS)
    check_choice("device", device, DEVICES)
    check_choice("form", form, model_zoo.FORMS)
    threads_option(threads)
    if any(n < 1 for n in batches or []):
        raise HarnessError("--batch must be at least 1")
    check_batch_memory(max(batches or [1]), max(sizes.values()))
    if weights and len(models) != 1:
        raise HarnessError("--weights loads one checkpoint: pass exactly one --model with it")
    if weights:
        check_weights(models[0], form, weights)
    if device == "iphone":
        if input_size is not None:
            raise HarnessError("--input-size changes host runs; a phone's bundle runs each model at its own resolution")
        return iphone_jobs(models, backends, precisions, compute_units, sizes)
    backends_named = bool(backends)
    if device == "cuda" and not backends:  # every GPU backend: those that cannot run here say why in a skipped record
        backends = [n for n in registry.names() if "cuda" in registry.get(n).devices]
    backends = backends or (offered if offered is not None else available_cpu_backends())
    if not backends:
        raise HarnessError("no backend is available; `bench list backends` says what to install")
    if backends_named and "int8" in (precisions or []) and not any("int8" in registry.get(b).precisions for b in backends):
        raise HarnessError(f"none of {', '.join(backends)} has an int8 path; int8 runs on {', '.join(registry.int8_backends())}")
    own = {b: registry.get(b).devices for b in backends if registry.get(b).own_devices}
    if compute_units and not own:
        raise HarnessError("--compute-units applies to backends with compute units (coreml); add one or drop the option")
    for unit in compute_units or []:
        check_choice("compute unit", unit, sorted({u for units in own.values() for u in units}))
    layout = "nhwc" if selection.channels_last else "nchw"
    try:
        configured = parse_cli_options(list(selection.options), backends, registry.get)
    except ConfigError as exc:
        raise HarnessError(str(exc)) from None
    if RECIPE in configured:
        check_recipe(configured[RECIPE], models, form, precisions or [])
    planned = []
    for b in backends:
        backend = registry.get(b)
        devices = (compute_units or [own[b][0]]) if b in own else [device]
        for dev in devices:
            planned += plan(models, [b], precisions or [backend.default_precision], batches or [1],
                         threads, dev, form, sizes, layout, configured)
    if selection.job_options is not None:  # one planned job again (`of_job`): its own options, as they are
        own, recipe = int8_recipe.split(selection.job_options)  # the recipe rides on int8 jobs only, as in `plan`
        planned = [dataclasses.replace(job, options=int8_recipe.join(own, recipe if job.precision == "int8" else ""))
                   for job in planned]
    return sorted(planned, key=lambda j: models.index(j.model))  # model-major: a model's backends run back to back


def check_recipe(recipe: str, models: list[str], form: str, precisions: list[str]) -> None:
    """`-o int8.*` needs int8 jobs, and every layer it keeps in float must be a convolution or linear layer
    of every model (by module name, as `bench profile` names layers): a misspelt name is one line, not a
    layer silently quantized."""
    from torch import nn

    from backends.int8_recipe import Int8Recipe

    if "int8" not in precisions:
        raise HarnessError("-o int8.FIELD=VALUE changes int8 jobs: add -p int8 or drop it")
    wanted = Int8Recipe.parse(recipe).layers()
    for model in models if wanted else []:
        names = [n for n, m in model_zoo.create(model, form=form).named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            near = closest(unknown[0], names)
            raise HarnessError(f"-o int8.float_layers: {model} has no convolution or linear layer {unknown[0]!r}"
                               + (f"; did you mean {', '.join(near)}?" if near else f" (its first: {', '.join(names[:3])}, ...)"))


def iphone_jobs(models: list[str], backends: list[str] | None, precisions: list[str] | None,
                compute_units: list[str] | None, sizes: dict[str, int]) -> list[Job]:
    """`--device iphone`: jobs of a backend that times on a phone (`on_device`: Core ML) timed there (batch 1, one
    thread, the `on-device` boundary), the very jobs a device bundle holds, so their records join those
    `bench ingest` stores."""
    phone = [name for name in registry.names() if registry.get(name).on_device]
    if not phone or (backends and (len(backends) > 1 or backends[0] not in phone)):
        raise HarnessError(f"--device iphone runs {' or '.join(phone) or 'no backend here'} on the phone: pass "
                           f"-b {phone[0] if phone else 'coreml'} or no -b")
    name = backends[0] if backends else phone[0]
    backend = registry.get(name)
    for p in precisions or []:
        check_choice(f"{name} precision", p, backend.precisions)
    for unit in compute_units or []:
        check_choice("compute unit", unit, backend.devices)
    jobs = [dataclasses.replace(job, boundary="on-device")
            for unit in compute_units or [backend.devices[0]]
            for job in plan(models, [name], precisions or [backend.default_precision], [1], 1, unit, "fused", sizes)]
    return sorted(jobs, key=lambda j: models.index(j.model))


def calibration_from_options(jobs: list[Job], selection: Selection,
                             say: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Each int8 model's calibration set, checked now (folder, images, size): a bad one is one line before
    any work, what the folder leaves out is said to `say`. `--calibration` without an int8 job is a mistake
    worth saying."""
    from harness.measure.calibration import for_jobs

    folder, size = selection.calibration, selection.calibration_size
    if (folder is not None or size is not None) and not any(j.precision == "int8" for j in jobs):
        raise HarnessError("--calibration and --calibration-size apply to int8 jobs; add -p int8 or drop them")
    return for_jobs(jobs, folder, size, say)
