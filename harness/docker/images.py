"""gauntlet's images: what they are called, how they are built, and the base they start from.

Every Dockerfile in harness/docker/dockerfiles/ starts `FROM ${BASE}`, by default
`debian:bookworm-slim` as pulled from a registry. Where no registry answers, `base`
makes an equivalent from Debian's own packages (debootstrap minbase, `docker import`).
Python packages come from a wheel folder the host's pip fills (`wheels`), so a build
container needs no package index of its own.

    python -m harness.docker.images base     # gauntlet/base:bookworm (about 1.5 min, once)
    python -m harness.docker.images build    # every image (seconds when nothing changed)
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.docker.daemon import DockerUnavailable, connect

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DOCKERFILES = HERE / "dockerfiles"
WHEELS = HERE / "wheels"
REQUIREMENTS = HERE / "requirements"
REGISTRY_BASE = "debian:bookworm-slim"
LOCAL_BASE = "gauntlet/base:bookworm"
# The local base carries every Debian package the images install, so that building them
# needs no second download (each Dockerfile skips apt-get when its packages are there).
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "postgresql-15", "redis-server", "nginx")
TAG = "latest"
IMAGE_PYTHON = "3.11.2"  # bookworm's python3

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ImageRecipe:
    name: str  # the role: sut, faultproxy, postgres, redis, nginx
    wheels: str | None = None  # requirements/<wheels>.txt filled into wheels/<wheels>/

    @property
    def image(self) -> str:
        return f"gauntlet/{self.name}:{TAG}"

    @property
    def dockerfile(self) -> Path:
        return DOCKERFILES / f"{self.name}.Dockerfile"


RECIPES = {r.name: r for r in (
    ImageRecipe("postgres"), ImageRecipe("redis"), ImageRecipe("nginx"),
    ImageRecipe("faultproxy", wheels="faultproxy"), ImageRecipe("sut", wheels="sut"),
)}


def image_name(role: str) -> str:
    return RECIPES[role].image


def default_base(client) -> str:
    """The local debootstrap base if it exists, else the registry's Debian image."""
    from docker.errors import ImageNotFound

    try:
        client.images.get(LOCAL_BASE)
        return LOCAL_BASE
    except ImageNotFound:
        return REGISTRY_BASE


def has_image(client, name: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(name)
        return True
    except ImageNotFound:
        return False


def pins(requirements: Path) -> list[str]:
    """`name==version` for each requirement installed here: containers run what the embedded stack runs."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name = line.split(">")[0].split("=")[0].split("<")[0].strip()
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pass
    return out


def fill_wheels(recipe: ImageRecipe, progress: Progress = print) -> None:
    """`pip download` the recipe's requirements with the host's pip (and its index settings)."""
    if recipe.wheels is None:
        return
    target = WHEELS / recipe.wheels
    if target.exists():
        shutil.rmtree(target)  # only this build's wheels: the image's layer cache keys on them
    target.mkdir(parents=True)
    requirements = REQUIREMENTS / f"{recipe.wheels}.txt"
    constraints = target.parent / f".{recipe.wheels}-constraints.txt"
    constraints.write_text("\n".join(pins(requirements)) + "\n")
    # The images run Debian's python3 (3.11.2): markers are judged for it, not for this interpreter.
    argv = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", IMAGE_PYTHON,
            "--dest", str(target),
            "-r", str(requirements), "-c", str(constraints)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise DockerUnavailable(f"cannot fetch the wheels for the {recipe.name} image: "
                                f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")


INPUTS_LABEL = "gauntlet.inputs"  # digest of everything an image was built from


def inputs_digest(recipe: ImageRecipe, base_id: str) -> str:
    """What the image is built from: its Dockerfile, the base image, every file it COPYs
    and, for the wheel folder, the requirements with the versions pinned from this host
    (the folder itself is refilled on every build). Equal digests: the same image."""
    import hashlib

    digest = hashlib.sha256()
    text = recipe.dockerfile.read_text()
    for part in (text, base_id, IMAGE_PYTHON):
        digest.update(part.encode() + b"\0")
    if recipe.wheels is not None:
        requirements = REQUIREMENTS / f"{recipe.wheels}.txt"
        digest.update(requirements.read_bytes() + "\n".join(pins(requirements)).encode() + b"\0")
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or words[0].upper() != "COPY":
            continue
        for source in words[1:-1]:
            path = ROOT / source
            if WHEELS in path.parents or path == WHEELS:
                continue
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                if "__pycache__" in file.parts:
                    continue
                digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _built_from(client, image: str) -> str | None:
    from docker.errors import ImageNotFound

    try:
        return (client.images.get(image).labels or {}).get(INPUTS_LABEL)
    except ImageNotFound:
        return None


def build(client, names: list[str] | None = None, base: str | None = None,
          progress: Progress = print, force: bool = False) -> dict[str, float]:
    """Build the images whose inputs changed (an image built from the same inputs is kept
    without asking pip or the daemon to rebuild it); seconds per image built."""
    base = base or default_base(client)
    if not has_image(client, base):
        raise DockerUnavailable(f"base image {base} is not in the daemon: run `make docker-base` "
                                f"(debootstrap) or `docker pull {REGISTRY_BASE}`")
    base_id = client.images.get(base).id
    took: dict[str, float] = {}
    for name in names or list(RECIPES):
        recipe = RECIPES[name]
        t0 = time.monotonic()
        digest = inputs_digest(recipe, base_id)
        if not force and _built_from(client, recipe.image) == digest:
            progress(f"{recipe.image} is up to date")
            continue
        fill_wheels(recipe, progress)
        try:
            client.images.build(path=str(ROOT), dockerfile=str(recipe.dockerfile.relative_to(ROOT)),
                                tag=recipe.image, buildargs={"BASE": base}, rm=True, forcerm=True,
                                labels={"gauntlet.image": name, INPUTS_LABEL: digest}, timeout=900)
        except Exception as exc:  # BuildError, APIError: one line with the step that failed
            raise DockerUnavailable(f"building {recipe.image} failed: {_build_error(exc)}") from None
        took[name] = time.monotonic() - t0
        progress(f"{recipe.image} built ({took[name]:.1f}s, FROM {base})")
    return took


def _build_error(exc: Exception) -> str:
    log = getattr(exc, "build_log", None) or []
    lines = [str(e.get("stream") or e.get("error") or "").strip() for e in log if isinstance(e, dict)]
    lines = [line for line in lines if line]
    return (lines[-1] if lines else str(exc)).splitlines()[-1]


def make_base(client, progress: Progress = print, suite: str = "bookworm") -> float:
    """debootstrap a minimal Debian and import it as LOCAL_BASE; seconds taken (0 if it existed)."""
    if has_image(client, LOCAL_BASE):
        return 0.0
    debootstrap = shutil.which("debootstrap", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if debootstrap is None:
        raise DockerUnavailable("debootstrap not found: install it with `apt-get install -y debootstrap` "
                                "(or `make setup`), or pull debian:bookworm-slim from a registry")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gauntlet-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log = Path(tmp) / "debootstrap.log"
        progress(f"debootstrap --variant=minbase {suite} with {', '.join(BASE_PACKAGES)} (about 2.5 min) ...")
        with open(log, "wb") as out:
            done = subprocess.run([debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                                   suite, str(rootfs)],
                                  stdout=out, stderr=subprocess.STDOUT, timeout=900)
        if done.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise DockerUnavailable(f"debootstrap failed (exit {done.returncode}): {' '.join(tail)}")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(rootfs, arcname=".")
        buffer.seek(0)
        client.api.import_image_from_data(buffer.read(), repository=LOCAL_BASE.split(":")[0],
                                          tag=LOCAL_BASE.split(":")[1],
                                          changes=['CMD ["/bin/bash"]'])
    took = time.monotonic() - t0
    progress(f"{LOCAL_BASE} imported ({took:.0f}s)")
    return took


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "build"
    try:
        client = connect()
        if command == "base":
            make_base(client)
        elif command == "build":
            base = argv[1] if len(argv) > 1 else None
            build(client, base=base)
        else:
            print("usage: python -m harness.docker.images base|build [BASE]", file=sys.stderr)
            return 2
    except DockerUnavailable as exc:
        print(f"gauntlet: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
