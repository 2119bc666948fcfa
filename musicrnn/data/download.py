"""Fetch the official MAESTRO v2.0.0 MIDI zip: resumable, verified, unpacked safely and atomically.

Why each step:
- *Resumable*: the zip is ~57 MiB; a dropped connection should not restart it. Bytes go to a
  ``.part`` file and a retry asks for the rest with an HTTP ``Range`` request (a server that ignores
  ``Range`` answers 200 and we restart from zero).
- *Verified before unpacking*: size and SHA-256 are checked on the complete file, so a truncated,
  corrupted or substituted download never reaches the disk as MIDI files.
- *Safe*: members that would land outside ``dest`` (zip-slip: ``../x``, ``/x``) and symlinks are
  refused before anything is written.
- *Atomic*: the zip is unpacked into a temp folder inside ``dest`` and renamed into place, so an
  interrupted unpack never leaves a half-filled dataset folder that looks complete.

Checksum source: MusPy's ``MAESTRODatasetV2`` (salu133445/muspy, muspy/datasets/maestro.py) lists
this URL with size 59243107 and SHA-256 ``ec2cc9d9...dadf3``; mirdata's maestro loader lists the
same file with MD5 ``8a45cc678a8b23cd7bad048b1e9034c5`` (not checked here; SHA-256 is stronger).

Only the standard library (urllib, zipfile, hashlib) plus tqdm, already a dependency.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import stat
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from musicrnn.errors import MusicRNNError

OFFICIAL_URL = "https://storage.googleapis.com/magentadata/datasets/maestro/v2.0.0/maestro-v2.0.0-midi.zip"
OFFICIAL_SIZE = 59243107
OFFICIAL_SHA256 = "ec2cc9d94886c6b376db1eaa2b8ad1ce62ff9f0a28b3744782b13163295dadf3"
ROOT_NAME = "maestro-v2.0.0"  # the zip's single top-level folder
MAX_UNPACKED_BYTES = 4 << 30  # the real zip unpacks to ~85 MB; anything near this is a zip bomb
_CHUNK = 1 << 16
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError)


def download_maestro(
    dest: Path,
    url: str = OFFICIAL_URL,
    sha256: str | None = OFFICIAL_SHA256,
    size: int | None = OFFICIAL_SIZE,
    progress: bool = True,
    retries: int = 3,
    keep_zip: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download, verify and unpack the MAESTRO MIDI zip into ``dest``; return ``dest/maestro-v2.0.0``.

    Does nothing (and downloads nothing) when ``dest/maestro-v2.0.0`` already exists.
    ``retries``: how many times a dropped connection is resumed within this call; a later call
    resumes from the ``.part`` file too. ``sha256``/``size`` None skip that check (tests, mirrors).
    Raises MusicRNNError (network failure, checksum mismatch, unsafe zip, destination in the way).
    """
    dest = Path(dest)
    root = dest / ROOT_NAME
    if root.exists():
        _say(progress, f"{root} already exists — nothing to download")
        return root
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MusicRNNError(f"cannot create {dest} ({e.strerror}) — pass a writable --dest folder") from None
    zip_path = dest / Path(PurePosixPath(url).name or "maestro-midi.zip").name
    if not (zip_path.exists() and _verify(zip_path, url, sha256, size, delete_bad=False)):
        part = zip_path.with_name(zip_path.name + ".part")
        fetch(url, part, size=size, progress=progress, retries=retries, timeout=timeout)
        _verify(part, url, sha256, size, delete_bad=True)  # raises on mismatch; nothing unpacked
        os.replace(part, zip_path)
    out = unpack_zip(zip_path, dest)
    if not keep_zip:
        zip_path.unlink()
    return root if root.exists() else out


def fetch(url: str, part: Path, size: int | None = None, progress: bool = True,
          retries: int = 3, timeout: float = 60.0) -> Path:
    """Download ``url`` into ``part``, resuming what is already there with an HTTP Range request.

    Returns ``part`` once the server says the body is complete (verification is the caller's job).
    """
    from tqdm import tqdm

    attempt = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:  # longer than the real file: certainly wrong
            part.unlink()
            have = 0
        if size is not None and have == size:
            return part
        headers = {"User-Agent": "musicrnn-download/1"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
                status = getattr(resp, "status", 200)
                if status == 206 and _range_start(resp.headers.get("Content-Range")) != have:
                    part.unlink(missing_ok=True)  # cannot trust what we have: restart from zero
                    raise http.client.HTTPException("server answered a different byte range")
                if have and status == 206:
                    mode = "ab"
                else:  # 200: server ignored Range (or this is a fresh start) -> start over
                    mode, have = "wb", 0
                length = resp.headers.get("Content-Length")
                total = have + int(length) if length and length.isdigit() else size
                with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                 unit_divisor=1024, desc=part.name.removesuffix(".part"),
                                                 file=sys.stderr, disable=not progress, leave=False) as bar:
                    while chunk := resp.read(_CHUNK):
                        f.write(chunk)
                        bar.update(len(chunk))
                    f.flush()
                    os.fsync(f.fileno())
            got = part.stat().st_size
            if total is not None and got < total:  # server closed early without an error
                raise http.client.IncompleteRead(b"", total - got)
            return part
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # our offset is past the end: the .part is stale, restart
                part.unlink()
                attempt += 1
                if attempt <= retries:
                    continue
            raise MusicRNNError(f"cannot download {url}: HTTP {e.code} {e.reason} — check the URL "
                                f"(or the network/proxy) and run again") from None
        except _NETWORK_ERRORS as e:
            attempt += 1
            if attempt <= retries:
                _say(progress, f"connection dropped ({_reason(e)}); resuming ({attempt}/{retries})")
                continue
            have = part.stat().st_size if part.exists() else 0
            raise MusicRNNError(f"cannot download {url}: {_reason(e)} — check the network and run again; "
                                f"{have} bytes kept in {part} and resumed next time") from None


def _verify(path: Path, url: str, sha256: str | None, size: int | None, delete_bad: bool) -> bool:
    """Check size then SHA-256. A bad *download* is deleted and raises; a bad existing zip returns False."""
    got_size = path.stat().st_size
    problem = None
    if size is not None and got_size != size:
        problem = f"size {got_size} bytes, expected {size}"
    elif sha256 is not None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        if h.hexdigest() != sha256.lower():
            problem = f"SHA-256 {h.hexdigest()}, expected {sha256.lower()}"
    if problem is None:
        return True
    if not delete_bad:
        return False
    path.unlink()
    raise MusicRNNError(f"download of {url} is corrupt ({problem}) — deleted {path}; run again, "
                        f"and if it repeats the file at that URL changed or a proxy alters it")


def unpack_zip(zip_path: Path, dest: Path) -> Path:
    """Unpack ``zip_path`` into ``dest`` all-or-nothing; refuse unsafe members before writing any.

    Returns the single top-level folder of the zip inside ``dest`` (``dest`` itself if there are several).
    """
    dest = Path(dest)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise MusicRNNError(f"{zip_path} is not a readable zip ({e}) — delete it and download again") from None
    with zf:
        members = zf.infolist()
        tops = {_check_member(m, zip_path) for m in members}
        total = sum(m.file_size for m in members)
        if total > MAX_UNPACKED_BYTES:
            raise MusicRNNError(f"{zip_path} would unpack to {total} bytes — refusing (zip bomb?); "
                                f"delete it and download again")
        clash = sorted(t for t in tops if (dest / t).exists() or (dest / t).is_symlink())
        if clash:
            raise MusicRNNError(f"{dest / clash[0]} already exists — move it away or pick another --dest")
        tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest))
        try:
            for m in members:  # extract() re-sanitises names; we already refused anything odd
                zf.extract(m, tmp)
            for t in sorted(tops):
                os.rename(tmp / t, dest / t)  # same filesystem: atomic per top-level entry
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest / next(iter(tops)) if len(tops) == 1 else dest


def _check_member(m: zipfile.ZipInfo, zip_path: Path) -> str:
    """Return the member's top-level name, or raise if it is a symlink or escapes the folder."""
    name = m.filename
    mode = m.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise MusicRNNError(f"{zip_path}: member {name!r} is a symlink — refusing to unpack; "
                            f"this is not the official archive, delete it and download again")
    p = PurePosixPath(name.replace("\\", "/"))
    if (not name or p.is_absolute() or ".." in p.parts or ":" in p.parts[0] or "\0" in name
            or p.parts[0] in (".", "")):
        raise MusicRNNError(f"{zip_path}: member {name!r} would land outside the destination — "
                            f"refusing to unpack; delete the zip and download the official one")
    return p.parts[0]


def _range_start(content_range: str | None) -> int | None:
    """'bytes 100-199/200' -> 100."""
    try:
        return int(content_range.split()[1].split("-")[0]) if content_range else None
    except (IndexError, ValueError):
        return None


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        return str(e.reason)
    if isinstance(e, http.client.IncompleteRead):
        return "connection closed before the end of the file"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _say(enabled: bool, msg: str) -> None:
    if enabled:
        print(msg, file=sys.stderr)
