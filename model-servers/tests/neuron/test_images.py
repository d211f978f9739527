"""The images: each lock resolves for its base image's Python and platform (pip's resolver, PyPI),
and each Dockerfile, parsed by Docker's own parser, builds on the lock's base as a non-root user
with nothing installed at start-up. The negative cases are the failures the images had."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import images  # noqa: E402


@pytest.mark.parametrize("name", sorted(images.IMAGES))
def test_the_lock_resolves_for_its_base_image(name: str) -> None:
    assert images.check_lock(images.IMAGES[name]) == []


@pytest.mark.parametrize("name", sorted(images.IMAGES))
def test_the_dockerfile_builds_on_the_locks_base_as_non_root(name: str) -> None:
    image = images.IMAGES[name]
    assert images.check_dockerfile(image) == []
    assert images.hadolint(image) == []


def test_the_cpu_tests_run_the_gpu_images_versions() -> None:
    assert images.check_cpu_test_lock() == []


def test_no_cuda_or_torch_wheel_in_an_image_lock() -> None:
    for image in images.IMAGES.values():
        pins = images.read_lock(image.lock)
        assert not [k for k in pins if images.is_base_only(image, k)], image.name


def test_the_neuron_image_is_on_the_sdk_optimum_neuron_is_built_for() -> None:
    """optimum-neuron 0.4.5 pins torch-neuronx 2.8.0.2.10 / neuronx-cc 2.21 (Neuron SDK 2.26)."""
    from importlib.metadata import requires

    neuron = images.IMAGES["neuron"]
    pins = images.read_lock(neuron.lock)
    assert pins["optimum-neuron"] == "0.4.5" and pins["diffusers"].startswith("0.35.") and pins["transformers"].startswith("4.57.")
    extra = [r for r in requires("optimum-neuron") or [] if 'extra == "neuronx"' in r]
    assert any(r.startswith("torch-neuronx==2.8.0") for r in extra)
    assert "-sdk2.26." in neuron.base and ":2.8.0-" in neuron.base and "-py311-" in neuron.base


def test_a_pin_the_base_python_cannot_install_fails(tmp_path: Path) -> None:
    """The old Neuron image: fastapi 0.165 (Python >= 3.11) pinned for a Python 3.10 base."""
    lock = tmp_path / "old.lock"
    lock.write_text("fastapi==0.165.0\n")
    problems = images.check_lock(replace(images.IMAGES["neuron"], name="old", python="3.10", provides={}), lock)
    assert len(problems) == 1 and "Python 3.10" in problems[0] and "fastapi" in problems[0]


def test_an_incomplete_lock_fails(tmp_path: Path) -> None:
    lock = tmp_path / "thin.lock"
    lock.write_text("httpx==0.28.1\n")  # without httpx's own dependencies
    problems = images.check_lock(replace(images.IMAGES["gpu"], provides={}), lock)
    assert any("incomplete, pip also needs anyio==" in p for p in problems)


BAD_DOCKERFILES = {
    "root": ("USER 10001:10001", "USER root", "the last USER is root"),
    "no user": ("USER 10001:10001\n", "", "no USER"),
    "installs at start-up": ('ENTRYPOINT ["python", "-m", "hwai_models.server"]', 'ENTRYPOINT ["sh", "-c", "pip install optimum-neuron && python -m hwai_models.server"]', "installs or downloads at start-up"),
    "old base": ("pytorch-inference-neuronx:2.8.0-neuronx-py311-sdk2.26.1-ubuntu22.04", "pytorch-inference-neuronx:2.5.1-neuronx-py310-sdk2.22.0-ubuntu22.04", "but locks/neuron.lock is resolved for"),
    "unpinned install": ("python -m pip install --no-deps -r /tmp/neuron.lock", "python -m pip install optimum-neuron -r /tmp/neuron.lock", "without --no-deps"),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCKERFILES))
def test_a_bad_dockerfile_is_named(case: str, tmp_path: Path) -> None:
    old, new, expected = BAD_DOCKERFILES[case]
    image = images.IMAGES["neuron"]
    text = (images.ROOT / image.dockerfile).read_text()
    assert old in text
    bad = tmp_path / "Dockerfile.neuron"
    bad.write_text(text.replace(old, new))
    problems = images.check_dockerfile(replace(image, dockerfile=str(bad)))
    assert any(expected in p for p in problems), problems
