"""Build the Lambda zip: runtime dependencies for the Lambda platform plus our packages.

Called by ``scripts/build.sh lambda``. Steps:

1. requirements = the lock file of the ``aws`` extra, ``requirements/aws.txt`` (made by
   ``scripts/lock.sh`` under the versions the test suite installs, requirements/dev.txt):
   exact versions with hashes, the runtime dependencies and the ``aws`` extra only (no
   functions-framework, no MCP stack); a lock that does not pin every requirement of
   pyproject.toml is refused (re-run scripts/lock.sh);
2. ``pip install --require-hashes --no-deps --platform manylinux2014_x86_64
   --only-binary=:all:`` into a dependency folder under ``build/lambda/``, named by a hash
   of everything that decides its content (lock file, platform, Python version, this
   file), so an unchanged tree is reused;
3. strip what a function never imports (tests, caches, type stubs, pip's own metadata
   noise) and precompile bytecode for Python 3.11 with ``unchecked-hash`` pycs, which stay
   valid whatever the file times are after Lambda unpacks the zip (imports without .pyc
   files measured 2-4x slower);
4. copy ``shared/`` and ``functions/`` (compiled the same way) and write a reproducible
   zip: sorted entries, fixed times and modes, so the same tree gives the same bytes and
   Terraform's ``source_code_hash`` only changes when the code does.

Prints one line: ``ZIP <path> <bytes> <files>``.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.11"
PACKAGES = ("shared", "functions")
STRIP_DIRS = {"tests", "test", "__pycache__"}
STRIP_SUFFIXES = (".pyi", ".pyc", ".pyo", ".c", ".h", ".pxd", ".pyx")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# botocore ships the models of ~440 services (28 MB); a function talks to these only. The
# Lambda platform's own boto3 is not used: the zip pins the version it was tested with.
BOTOCORE_SERVICES = {"dynamodb", "secretsmanager", "lambda", "bedrock-runtime", "sts", "sso", "sso-oidc", "kms"}


def requirements(extra: str) -> list[str]:
    """Runtime dependencies plus ``extra`` from pyproject.toml, sorted."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return sorted(project["dependencies"] + project.get("optional-dependencies", {}).get(extra, []))


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement line (``Foo_bar[x]>=1`` -> ``foo-bar``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def lock_file(extra: str) -> Path:
    """``requirements/<extra>.txt``, checked to pin every requirement of the deps + ``extra``."""
    path = ROOT / "requirements" / f"{extra}.txt"
    if not path.is_file():
        raise SystemExit(f"build_lambda: no lock file {path.relative_to(ROOT)} for the {extra!r} extra: "
                         f"run scripts/lock.sh")
    pinned = {_name(line) for line in path.read_text().splitlines() if re.match(r"[A-Za-z0-9].*==", line)}
    missing = sorted({_name(r) for r in requirements(extra)} - pinned)
    if missing:
        raise SystemExit(f"build_lambda: {path.relative_to(ROOT)} does not pin {', '.join(missing)} "
                         f"(pyproject.toml changed): run scripts/lock.sh")
    return path


def deps_key(lock: Path) -> str:
    """The cache key of the dependency folder."""
    h = hashlib.sha256()
    h.update(lock.read_bytes())
    h.update(json.dumps([PLATFORM, PYTHON_VERSION, sys.version_info[:2]]).encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def sources_hash() -> str:
    """A hash of our packages' files (what the zip adds to the dependency folder)."""
    h = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def strip(tree: Path) -> None:
    """Remove tests, caches, stubs and sources of extensions from an installed tree."""
    for path in sorted(tree.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in STRIP_DIRS:
            shutil.rmtree(path, ignore_errors=True)  # a dependency's tests are never imported by a function
        elif path.is_file() and path.suffix in STRIP_SUFFIXES:
            path.unlink()
    for name in ("bin",):  # console scripts point at the build machine's interpreter
        shutil.rmtree(tree / name, ignore_errors=True)
    data = tree / "botocore" / "data"
    if data.is_dir():
        for entry in data.iterdir():
            if entry.is_dir() and entry.name not in BOTOCORE_SERVICES:
                shutil.rmtree(entry)
        for example in data.rglob("examples-1.json"):
            example.unlink()
    strip_binary = shutil.which("strip")
    if strip_binary:  # debug symbols of extension modules: about a sixth of the tree
        shared_objects = [str(p) for p in tree.rglob("*.so*") if p.is_file()]
        for i in range(0, len(shared_objects), 200):
            subprocess.run([strip_binary, "--strip-unneeded", *shared_objects[i:i + 200]], check=False)
    else:
        print("build_lambda: no `strip` binary (binutils): extension modules keep their symbols", file=sys.stderr)


def compile_tree(tree: Path) -> None:
    """Write ``unchecked-hash`` pycs next to every module (for Python 3.11, as Lambda runs)."""
    ok = compileall.compile_dir(str(tree), quiet=2, workers=os.cpu_count() or 1, ddir="/var/task",
                                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    if not ok:
        # some packages ship Python-2-only or template files that do not compile; they are never imported
        print("build_lambda: some files did not compile (kept as sources)", file=sys.stderr)


def install_deps(lock: Path, target: Path) -> None:
    """pip install the locked requirements (exact versions, hashes checked) for the Lambda
    platform into ``target``."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
           "--target", str(tmp), "--platform", PLATFORM, "--implementation", "cp", "--python-version",
           PYTHON_VERSION, "--only-binary=:all:", "--no-deps", "--require-hashes", "-r", str(lock)]
    subprocess.run(cmd, check=True)
    strip(tmp)
    compile_tree(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def copy_packages(stage: Path) -> None:
    """Our packages, without caches, compiled like the dependencies."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, stage / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"))
    compile_tree(stage)


def write_zip(sources: list[Path], out: Path) -> tuple[int, int]:
    """A reproducible zip of the union of ``sources`` (later ones win); returns (bytes, files)."""
    entries: dict[str, Path] = {}
    for source in sources:
        for path in source.rglob("*"):
            if path.is_file():
                entries[path.relative_to(source).as_posix()] = path
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100755 if os.access(entries[name], os.X_OK) else 0o100644) << 16
            zf.writestr(info, entries[name].read_bytes(), compresslevel=9)
    tmp.replace(out)
    return out.stat().st_size, len(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Lambda zip.")
    parser.add_argument("--out", default=str(ROOT / "build" / "lambda" / "multiagent-lambda.zip"))
    parser.add_argument("--extra", default="aws",
                        help="optional dependency group whose lock file requirements/EXTRA.txt is installed "
                             "(default: aws)")
    args = parser.parse_args(argv)
    if sys.version_info[:2] != (3, 11):
        print(f"build_lambda: Python 3.11 is needed to precompile for the python3.11 runtime "
              f"(this is {sys.version.split()[0]})", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    work = out.parent
    work.mkdir(parents=True, exist_ok=True)
    lock = lock_file(args.extra)
    deps = work / f"deps-{deps_key(lock)}"
    if not deps.exists():
        print(f"build_lambda: installing {lock.relative_to(ROOT)} for {PLATFORM} into {deps.name}", file=sys.stderr)
        for old in work.glob("deps-*"):
            shutil.rmtree(old, ignore_errors=True)
        install_deps(lock, deps)
    else:
        print(f"build_lambda: reusing {deps.name}", file=sys.stderr)
    stamp = out.with_name(out.name + ".inputs")
    inputs = f"{deps.name} {sources_hash()}"
    if out.exists() and stamp.exists() and stamp.read_text() == inputs:
        print(f"build_lambda: {out.name} is up to date", file=sys.stderr)
    else:
        stage = work / "src"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
        copy_packages(stage)
        write_zip([deps, stage], out)
        stamp.write_text(inputs)
    with zipfile.ZipFile(out) as zf:
        files = len(zf.namelist())
    print(f"ZIP {out} {out.stat().st_size} {files}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
