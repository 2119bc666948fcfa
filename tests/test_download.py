"""download.py against a real HTTP server on 127.0.0.1 (no other network): fetch, resume, verify, unpack.

The server is a tiny threaded ``http.server`` with ``Range`` support that can cut the body of
its next N responses in half (a dropped connection) or ignore ``Range`` (an old server).
"""
from __future__ import annotations

import hashlib
import http.server
import io
import stat
import threading
import zipfile
from pathlib import Path

import pytest

from musicrnn.data.download import ROOT_NAME, download_maestro, unpack_zip
from musicrnn.errors import MusicRNNError
from musicrnn.notes import Notes


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server API)
        srv = self.server
        srv.log.append((self.path, self.headers.get("Range")))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, code = 0, 200
        rng = self.headers.get("Range")
        if rng and srv.ranges and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.send_error(416)
                return
            code = 206
        body = data[start:]
        self.send_response(code)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Accept-Ranges", "bytes" if srv.ranges else "none")
        self.end_headers()
        if srv.cut > 0:  # a dropped connection: half the body, then close
            srv.cut -= 1
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # never route the test through a proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.log, srv.ranges, srv.cut = {}, [], True, 0
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.url = lambda path: f"http://127.0.0.1:{srv.server_address[1]}{path}"
    yield srv
    srv.shutdown()
    srv.server_close()


def _midi_bytes(tmp_path: Path, seed: int) -> bytes:
    notes = Notes.from_arrays([60 + seed, 64, 67], [0.0, 0.5, 1.0], [0.4, 0.9, 1.5], [80, 90, 100])
    return notes.to_midi(tmp_path / f"m{seed}.midi").read_bytes()


def _zip(members: dict[str, bytes], symlinks: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data)
    return buf.getvalue()


@pytest.fixture
def good_zip(tmp_path) -> tuple[bytes, dict[str, bytes]]:
    members = {f"{ROOT_NAME}/2004/piece{i}.midi": _midi_bytes(tmp_path, i) for i in range(3)}
    members[f"{ROOT_NAME}/{ROOT_NAME}.csv"] = b"canonical_composer,split,midi_filename\n"
    return _zip(members), members


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_download_verify_unpack(server, good_zip, tmp_path):
    data, members = good_zip
    server.files["/m.zip"] = data
    dest = tmp_path / "dest"
    root = download_maestro(dest, url=server.url("/m.zip"), sha256=_sha(data), size=len(data), progress=False)
    assert root == dest / ROOT_NAME
    for name, content in members.items():
        assert (dest / name).read_bytes() == content
    assert Notes.from_midi(root / "2004" / "piece1.midi").pitch.tolist() == [61, 64, 67]
    assert _leftovers(dest) == [ROOT_NAME]  # zip, .part and temp folder all gone
    # a second call finds the folder and does not touch the network
    n = len(server.log)
    assert download_maestro(dest, url=server.url("/m.zip"), sha256=_sha(data), size=len(data),
                            progress=False) == root
    assert len(server.log) == n


def test_checksum_mismatch_raises_and_unpacks_nothing(server, good_zip, tmp_path):
    data, _ = good_zip
    server.files["/m.zip"] = data
    dest = tmp_path / "dest"
    with pytest.raises(MusicRNNError, match=r"corrupt \(SHA-256 .*/m\.zip|/m\.zip is corrupt"):
        download_maestro(dest, url=server.url("/m.zip"), sha256="0" * 64, size=len(data), progress=False)
    assert _leftovers(dest) == []  # no dataset, no zip, no .part


def test_size_mismatch_raises(server, good_zip, tmp_path):
    data, _ = good_zip
    server.files["/m.zip"] = data
    with pytest.raises(MusicRNNError, match="size"):
        download_maestro(tmp_path, url=server.url("/m.zip"), sha256=_sha(data), size=len(data) + 1,
                         progress=False, retries=0)
    assert not (tmp_path / ROOT_NAME).exists()


@pytest.mark.parametrize("bad", ["../evil.midi", f"{ROOT_NAME}/../../evil.midi", "/tmp/evil.midi", "C:/evil.midi"])
def test_zip_slip_member_refused(server, tmp_path, bad):
    data = _zip({f"{ROOT_NAME}/ok.midi": b"MThd", bad: b"evil"})
    server.files["/m.zip"] = data
    dest = tmp_path / "a" / "dest"
    with pytest.raises(MusicRNNError, match="outside the destination"):
        download_maestro(dest, url=server.url("/m.zip"), sha256=_sha(data), size=len(data), progress=False)
    assert not (dest / ROOT_NAME).exists()
    assert not list(tmp_path.rglob("evil.midi"))
    assert [p for p in _leftovers(dest) if p.startswith(".unpack")] == []


def test_symlink_member_refused(tmp_path):
    zp = tmp_path / "s.zip"
    zp.write_bytes(_zip({f"{ROOT_NAME}/ok.midi": b"MThd", f"{ROOT_NAME}/link": b"/etc/passwd"},
                        symlinks=(f"{ROOT_NAME}/link",)))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(MusicRNNError, match="symlink"):
        unpack_zip(zp, dest)
    assert _leftovers(dest) == []


def test_interrupted_download_resumes_next_call(server, good_zip, tmp_path):
    data, _ = good_zip
    server.files["/m.zip"] = data
    server.cut = 1  # the first response stops half-way
    dest = tmp_path / "dest"
    kw = dict(url=server.url("/m.zip"), sha256=_sha(data), size=len(data), progress=False)
    with pytest.raises(MusicRNNError, match="run again"):
        download_maestro(dest, retries=0, **kw)
    part = dest / "m.zip.part"
    assert 0 < part.stat().st_size < len(data)
    half = part.stat().st_size
    assert download_maestro(dest, retries=0, **kw) == dest / ROOT_NAME
    assert server.log[-1][1] == f"bytes={half}-"  # asked only for the rest
    assert _leftovers(dest) == [ROOT_NAME]


def test_dropped_connection_resumed_within_one_call(server, good_zip, tmp_path):
    data, members = good_zip
    server.files["/m.zip"] = data
    server.cut = 1
    root = download_maestro(tmp_path, url=server.url("/m.zip"), sha256=_sha(data), size=len(data),
                            progress=False, retries=2, keep_zip=True)
    assert [r for _, r in server.log] == [None, f"bytes={len(data) // 2}-"]
    assert (tmp_path / "m.zip").read_bytes() == data  # keep_zip keeps the verified zip
    assert sorted(str(p.relative_to(tmp_path)) for p in root.rglob("*") if p.is_file()) == sorted(members)


def test_server_without_range_restarts(server, good_zip, tmp_path):
    data, _ = good_zip
    server.files["/m.zip"] = data
    server.ranges = False
    (tmp_path / "m.zip.part").write_bytes(b"garbage that is not a prefix")
    root = download_maestro(tmp_path, url=server.url("/m.zip"), sha256=_sha(data), size=len(data), progress=False)
    assert root.is_dir() and server.log[-1][1] is not None  # it asked, got 200, started over


def test_network_failure_is_one_clear_line(server, tmp_path):
    url = server.url("/missing.zip")
    with pytest.raises(MusicRNNError, match=r"cannot download .*/missing\.zip: HTTP 404") as e:
        download_maestro(tmp_path, url=url, progress=False)
    assert "\n" not in str(e.value)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(MusicRNNError, match=f"cannot download http://127.0.0.1:{port}/x.zip: .*run again"):
        download_maestro(tmp_path, url=f"http://127.0.0.1:{port}/x.zip", progress=False, retries=0, timeout=5)
