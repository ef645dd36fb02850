"""An image is rebuilt exactly when what it is built from changed: its Dockerfile, the
base image, a file it COPYs (not bytecode caches), the pinned requirements."""

from harness.docker import images


def make_tree(tmp_path, monkeypatch):
    (tmp_path / "dockerfiles").mkdir()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "x.py").write_text("print(1)\n")
    (tmp_path / "dockerfiles" / "demo.Dockerfile").write_text("FROM ${BASE}\nCOPY app /app\n")
    monkeypatch.setattr(images, "ROOT", tmp_path)
    monkeypatch.setattr(images, "DOCKERFILES", tmp_path / "dockerfiles")
    monkeypatch.setattr(images, "WHEELS", tmp_path / "wheels")
    return images.ImageRecipe("demo")


def test_the_digest_follows_every_input_and_nothing_else(tmp_path, monkeypatch):
    recipe = make_tree(tmp_path, monkeypatch)
    first = images.inputs_digest(recipe, "sha256:base1")
    assert images.inputs_digest(recipe, "sha256:base1") == first
    (tmp_path / "app" / "__pycache__").mkdir()
    (tmp_path / "app" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert images.inputs_digest(recipe, "sha256:base1") == first, "bytecode is not an input"
    assert images.inputs_digest(recipe, "sha256:base2") != first, "a new base image"
    (tmp_path / "app" / "x.py").write_text("print(2)\n")
    second = images.inputs_digest(recipe, "sha256:base1")
    assert second != first, "a copied file changed"
    (tmp_path / "app" / "y.py").write_text("")
    assert images.inputs_digest(recipe, "sha256:base1") != second, "a copied folder gained a file"
    recipe.dockerfile.write_text("FROM ${BASE}\nCOPY app /app\nUSER nobody\n")
    assert images.inputs_digest(recipe, "sha256:base1") != second, "the Dockerfile changed"


def test_the_reference_images_digest_their_sources():
    """The real recipes: every COPY source exists (a typo would hash nothing and never rebuild)."""
    for recipe in images.RECIPES.values():
        for line in recipe.dockerfile.read_text().splitlines():
            if line.split()[:1] == ["COPY"]:
                for source in line.split()[1:-1]:
                    assert (images.ROOT / source).exists() or source.startswith("harness/docker/wheels"), source
        assert len(images.inputs_digest(recipe, "sha256:x")) == 64
