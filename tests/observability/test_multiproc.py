"""The metrics directory of a server (observability/multiproc.py): shared by its workers,
new at each start, the left-overs of servers gone removed."""

import multiprocessing
import os

import pytest

from observability import multiproc


def _name_in_child(queue) -> None:
    queue.put(multiproc.server_name())


def test_workers_started_by_a_supervisor_share_its_name():
    # uvicorn --workers N starts its workers with multiprocessing's spawn, as here.
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    children = [context.Process(target=_name_in_child, args=(queue,)) for _ in range(2)]
    for child in children:
        child.start()
    names = {queue.get(timeout=120) for _ in children}
    for child in children:
        child.join(60)
    assert names == {multiproc.server_name()}
    assert multiproc.server_name().startswith(f"{os.getpid()}-")


def test_a_new_server_gets_a_new_directory_and_removes_those_of_servers_gone(tmp_path, monkeypatch):
    monkeypatch.delenv(multiproc.ENV, raising=False)
    monkeypatch.setattr(multiproc.tempfile, "gettempdir", lambda: str(tmp_path))
    root = tmp_path / f"routing-admin-metrics-{os.getuid()}"
    root.mkdir(mode=0o700)
    gone = root / "999999999-12345"  # no such process: a server that stopped
    gone.mkdir()
    (gone / "counter_1.db").write_bytes(b"old counts")
    here = multiproc.choose()
    assert os.environ[multiproc.ENV] == here
    assert here == str(root / multiproc.server_name())
    assert not gone.exists()
    # Another worker of the same server finds the same directory, and keeps its files.
    (root / multiproc.server_name() / "counter_2.db").write_bytes(b"")
    monkeypatch.delenv(multiproc.ENV)
    assert multiproc.choose() == here
    assert (root / multiproc.server_name() / "counter_2.db").exists()


def test_a_given_directory_is_used_as_it_is(tmp_path, monkeypatch):
    monkeypatch.setenv(multiproc.ENV, str(tmp_path / "mine"))
    assert multiproc.choose() == str(tmp_path / "mine")
    assert (tmp_path / "mine").is_dir()


def test_a_directory_of_someone_else_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(multiproc.ENV, raising=False)
    monkeypatch.setattr(multiproc.tempfile, "gettempdir", lambda: str(tmp_path))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / f"routing-admin-metrics-{os.getuid()}").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(multiproc.ImproperlyConfigured, match="PROMETHEUS_MULTIPROC_DIR"):
        multiproc.choose()
