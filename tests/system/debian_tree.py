#!/usr/bin/python3
"""Debian trees of a given release for the tests: debootstrapped once, cached, unpacked per run.

A tree is built from a recipe (release, debootstrap includes, packages installed with apt
afterwards) and cached as a tarball in CACHE/trees, named after a hash of the recipe, so a
changed package list builds a new one. A tarball older than MAX_AGE_DAYS is rebuilt, so
security and point-release updates reach the tests. Downloaded .debs (debootstrap's and
apt's, of every release) are kept in CACHE/archives, which the trees and the booted
containers get bind-mounted as /var/cache/apt/archives. Only inputs are cached: every run
unpacks a fresh copy and throws it away. The archives are hard-linked into a tree's
/var/cache/apt/archives and what apt downloaded there is linked back (harvest), so parallel
runs never share apt's lock and nothing a tree does can spoil the cache.

    debian_tree.py unpack RELEASE DEST [--include P,Q] [--packages "P Q ..."]
    debian_tree.py run DEST [--bind DIR]... -- COMMAND...   (a non-booted systemd-nspawn)
    debian_tree.py harvest DEST      (keep the packages apt downloaded in DEST)
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

CACHE = Path(os.environ.get("NETATMO_CI_CACHE", "/var/cache/netatmo-exporter-ci"))
ARCHIVES = CACHE / "archives"
MAX_AGE_DAYS = 7
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"


def say(message: str) -> None:
    print(message, flush=True)


def run(cmd: Sequence[str], *, timeout: float) -> None:
    say(f"   $ {' '.join(cmd)}")
    subprocess.run(cmd, check=True, timeout=timeout, stdin=subprocess.DEVNULL,
                   env={"PATH": CLEAN_PATH, "LANG": "C.UTF-8"})


def host_release() -> str:
    text = Path("/etc/os-release").read_text()
    match = re.search(r"^VERSION_CODENAME=\"?(\w+)", text, re.MULTILINE)
    if not match:
        raise SystemExit("cannot read VERSION_CODENAME from /etc/os-release")
    return match.group(1)


def _host_source_entries() -> list[tuple[str, list[str]]]:
    """(URI, suites) of the host's enabled Debian apt sources, deb822 and one-line."""
    entries: list[tuple[str, list[str]]] = []
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text()
        if path.name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
                suites = re.search(r"^Suites:\s*(.+)$", stanza, re.MULTILINE)
                if uris and suites and not re.search(r"^Enabled:\s*no", stanza,
                                                     re.MULTILINE | re.IGNORECASE):
                    entries.append((uris.group(1), suites.group(1).split()))
        elif path.name.endswith(".list"):
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], [words[2]]))
    return entries


def host_mirrors() -> tuple[str, str]:
    """The Debian mirror and security mirror the host uses (any release can be fetched there)."""
    release = host_release()
    mirror, security = DEFAULT_MIRROR, DEFAULT_SECURITY_MIRROR
    for uri, suites in _host_source_entries():
        if f"{release}-security" in suites:
            security = uri
        elif release in suites:
            mirror = uri
    return mirror, security


def sources_for(release: str) -> str:
    """deb822 apt sources for a Debian release, on the host's mirrors."""
    mirror, security = host_mirrors()
    return (f"Types: deb\nURIs: {mirror}\nSuites: {release} {release}-updates\n"
            f"Components: main\nSigned-By: {KEYRING}\n\n"
            f"Types: deb\nURIs: {security}\nSuites: {release}-security\n"
            f"Components: main\nSigned-By: {KEYRING}\n")


def configure_apt(root: Path, release: str) -> None:
    """Points the tree at release on the host's mirrors, with the host's Acquire settings."""
    (root / "etc/apt/sources.list").write_text("")
    sources_d = root / "etc/apt/sources.list.d"
    for old in sources_d.glob("*"):
        old.unlink()
    (sources_d / "debian.sources").write_text(sources_for(release))
    for conf in sorted(Path("/etc/apt/apt.conf.d").glob("*")):
        text = conf.read_text(errors="replace") if conf.is_file() else ""
        if re.search(r"^\s*Acquire::", text, re.MULTILINE) and "Invoke" not in text:
            shutil.copy(conf, root / "etc/apt/apt.conf.d" / conf.name)


def nspawn(root: Path, cmd: Sequence[str], *, binds: Sequence[Path] = (),
           chdir: Path | None = None, env: dict[str, str] | None = None) -> list[str]:
    """cmd run in the tree by a non-booted systemd-nspawn (host network, own mounts)."""
    args = ["systemd-nspawn", "--register=no", "--keep-unit", "--quiet", "--as-pid2",
            "-D", str(root)]
    args += [f"--bind={path}" for path in binds]
    if chdir is not None:
        args.append(f"--chdir={chdir}")
    for key, value in {"LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
                       **(env or {})}.items():
        args.append(f"--setenv={key}={value}")
    return [*args, "--", *cmd]


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def seed(root: Path) -> None:
    """The cached packages, hard-linked into the tree's apt archives."""
    archives = root / "var/cache/apt/archives"
    archives.mkdir(parents=True, exist_ok=True)
    for deb in ARCHIVES.glob("*.deb"):
        if not (archives / deb.name).exists():
            _link(deb, archives / deb.name)


def harvest(root: Path) -> None:
    """The packages apt downloaded into the tree, kept in the cache for the next run."""
    ARCHIVES.mkdir(parents=True, exist_ok=True)
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        if not (ARCHIVES / deb.name).exists():
            partial = ARCHIVES / f".{deb.name}.partial"
            partial.unlink(missing_ok=True)
            _link(deb, partial)
            partial.rename(ARCHIVES / deb.name)


# Raise when the way a tree is built changes, so cached trees are built again.
RECIPE_VERSION = 2


def recipe(release: str, include: str, packages: Sequence[str]) -> str:
    return (f"recipe={RECIPE_VERSION}\nrelease={release}\nvariant=minbase\ninclude={include}\n"
            f"packages={' '.join(sorted(packages))}\nmirror={host_mirrors()[0]}\n")


def cached_tarball(release: str, include: str, packages: Sequence[str]) -> Path:
    """The tarball of the tree for this recipe, built first if missing or too old (one
    builder at a time: parallel runs wait for it)."""
    text = recipe(release, include, packages)
    key = hashlib.sha256(text.encode()).hexdigest()[:12]
    (CACHE / "trees").mkdir(parents=True, exist_ok=True)
    with open(CACHE / "trees" / f".{release}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _cached_tarball(release, key, text, include, packages)


def _cached_tarball(release: str, key: str, text: str, include: str,
                    packages: Sequence[str]) -> Path:
    tarball = CACHE / "trees" / f"{release}-{key}.tar.zst"
    if tarball.is_file() and time.time() - tarball.stat().st_mtime < MAX_AGE_DAYS * 86400:
        say(f"   cached tree: {tarball}")
        return tarball
    started = time.monotonic()
    say(f"   building the tree for {tarball.name}:\n     " + text.strip().replace("\n", "\n     "))
    tarball.parent.mkdir(parents=True, exist_ok=True)
    ARCHIVES.mkdir(parents=True, exist_ok=True)
    scratch = CACHE / "trees" / f"{release}-{key}.build"
    if scratch.exists():
        shutil.rmtree(scratch)
    try:
        run(["debootstrap", "--variant=minbase", f"--include={include}",
             f"--cache-dir={ARCHIVES}", release, str(scratch), host_mirrors()[0]], timeout=1200)
        configure_apt(scratch, release)
        # debootstrap fetches the release only: the updates and security suites come now.
        seed(scratch)
        run(nspawn(scratch, ["apt-get", "update", "-q"]), timeout=600)
        run(nspawn(scratch, ["apt-get", "full-upgrade", "-y", "-q"]), timeout=1200)
        if packages:
            run(nspawn(scratch, ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                                 *packages]), timeout=1800)
        harvest(scratch)
        for deb in (scratch / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        partial = tarball.with_suffix(".partial")
        run(["tar", "-C", str(scratch), "--numeric-owner", "--xattrs", "--zstd",
             "-cf", str(partial), "."], timeout=900)
        partial.rename(tarball)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # Trees of other recipes (the booted one, the test one) stay until they are too old;
    # the archives hold every release's packages, so apt's autoclean cannot prune them.
    for stale in tarball.parent.glob("*.tar.zst"):
        if time.time() - stale.stat().st_mtime > MAX_AGE_DAYS * 86400:
            stale.unlink()
    for deb in ARCHIVES.glob("*.deb"):
        if time.time() - deb.stat().st_atime > 2 * MAX_AGE_DAYS * 86400:
            deb.unlink()
    say(f"   built {tarball} in {time.monotonic() - started:.0f}s")
    return tarball


def unpack(release: str, dest: Path, *, include: str, packages: Sequence[str] = ()) -> Path:
    """A fresh copy of the cached tree at dest, its apt pointed at release."""
    tarball = cached_tarball(release, include, packages)
    for attempt in (1, 2):
        dest.mkdir(parents=True)
        try:
            run(["tar", "-C", str(dest), "--numeric-owner", "--xattrs", "--xattrs-include=*",
                 "--zstd", "-xpf", str(tarball)], timeout=900)
            break
        except subprocess.CalledProcessError:
            if attempt == 2:
                raise
            say(f"   {tarball} is damaged: building it again")
            shutil.rmtree(dest)
            tarball.unlink()
            tarball = cached_tarball(release, include, packages)
    configure_apt(dest, release)
    seed(dest)
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    unpack_cmd = commands.add_parser("unpack", help="unpack a fresh tree of RELEASE at DEST")
    unpack_cmd.add_argument("release")
    unpack_cmd.add_argument("dest", type=Path)
    unpack_cmd.add_argument("--include", default="ca-certificates",
                            help="debootstrap --include list (comma-separated)")
    unpack_cmd.add_argument("--packages", default="", help="installed afterwards with apt")
    run_cmd = commands.add_parser("run", help="run a command in an unpacked tree")
    run_cmd.add_argument("dest", type=Path)
    run_cmd.add_argument("--bind", type=Path, action="append", default=[],
                         help="a host directory to bind at the same path (repeatable)")
    run_cmd.add_argument("--chdir", type=Path)
    run_cmd.add_argument("--setenv", action="append", default=[], help="KEY=VALUE")
    harvest_cmd = commands.add_parser("harvest", help="keep the packages apt downloaded")
    harvest_cmd.add_argument("dest", type=Path)
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:len(argv) - len(cmd) - (1 if "--" in argv else 0)])
    if os.geteuid() != 0:
        parser.error("run as root (debootstrap, systemd-nspawn)")
    if args.command == "unpack":
        unpack(args.release, args.dest, include=args.include, packages=args.packages.split())
        return 0
    if args.command == "harvest":
        harvest(args.dest)
        return 0
    if not cmd:
        parser.error("run: give a command after --")
    env = dict(item.split("=", 1) for item in args.setenv)
    return subprocess.run(nspawn(args.dest, cmd, binds=args.bind, chdir=args.chdir, env=env),
                          stdin=subprocess.DEVNULL, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
