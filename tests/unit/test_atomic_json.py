"""The run report and the snapshot manifest are replaced, never lost
(transforms/common/files.py write_json_atomically)."""
import os
import shutil

import pytest
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.localfilesystem import LocalFileSystem

from transforms.common.files import read_json_if_present, write_json_atomically


class Crash(BaseException):
    """The process dies here: nothing after this line runs."""


class _OverLocal(LocalFileSystem):
    """A Beam filesystem with a scheme of its own, kept in a local directory."""

    SCHEME = ""

    @classmethod
    def scheme(cls):
        return cls.SCHEME

    def local(self, url: str) -> str:
        return url[len(self.SCHEME) + 3:]

    def exists(self, url):
        return super().exists(self.local(url))

    def mkdirs(self, url):
        return super().mkdirs(self.local(url))

    def create(self, url, *args, **kwargs):
        return super().create(self.local(url), *args, **kwargs)

    def open(self, url, *args, **kwargs):
        return super().open(self.local(url), *args, **kwargs)

    def delete(self, urls):
        for url in urls:
            os.remove(self.local(url))


class ObjectStore(_OverLocal):
    """Renames as gs:// does in Beam (gcsfilesystem.py rename: copy_batch, then delete)."""

    SCHEME = "objstore-test"
    crash_in_rename = False

    def rename(self, sources, destinations):
        for src, dst in zip(sources, destinations):
            if ObjectStore.crash_in_rename:
                raise Crash()
            shutil.copyfile(self.local(src), self.local(dst))  # the object replaced whole
            os.remove(self.local(src))


class NoRenameOver(_OverLocal):
    """Renames as hdfs:// does: an existing destination is refused."""

    SCHEME = "norenameover-test"
    crash_after_delete = False

    def rename(self, sources, destinations):
        for src, dst in zip(sources, destinations):
            if os.path.exists(self.local(dst)):
                raise BeamIOError("Rename operation failed", {(src, dst): FileExistsError(dst)})
            if NoRenameOver.crash_after_delete:
                raise Crash()
            os.rename(self.local(src), self.local(dst))


@pytest.fixture(autouse=True)
def no_crashes():
    yield
    ObjectStore.crash_in_rename = NoRenameOver.crash_after_delete = False


def test_a_local_report_is_replaced_whole(tmp_path):
    path = str(tmp_path / "out" / "run-report.json")
    write_json_atomically(path, {"run_id": "1"})
    write_json_atomically(path, {"run_id": "2"})
    assert read_json_if_present(path) == {"run_id": "2"}
    assert os.listdir(tmp_path / "out") == ["run-report.json"]


def test_a_crash_while_a_local_report_is_put_in_place_keeps_the_old_one(tmp_path, monkeypatch):
    path = str(tmp_path / "run-report.json")
    write_json_atomically(path, {"run_id": "1"})

    def crash(*args, **kwargs):
        raise Crash()

    monkeypatch.setattr(os, "replace", crash)
    monkeypatch.setattr(os, "rename", crash)
    monkeypatch.setattr(FileSystems, "rename", crash)
    with pytest.raises(Crash):
        write_json_atomically(path, {"run_id": "2"})
    monkeypatch.undo()
    assert read_json_if_present(path) == {"run_id": "1"}


def test_an_object_store_report_is_replaced_and_a_crash_keeps_the_old_one(tmp_path):
    path = f"{ObjectStore.SCHEME}://{tmp_path}/run-report.json"
    write_json_atomically(path, {"run_id": "1"})
    write_json_atomically(path, {"run_id": "2"})
    assert read_json_if_present(path) == {"run_id": "2"}
    assert os.listdir(tmp_path) == ["run-report.json"]
    ObjectStore.crash_in_rename = True
    with pytest.raises(Crash):
        write_json_atomically(path, {"run_id": "3"})
    assert read_json_if_present(path) == {"run_id": "2"}


def test_where_rename_cannot_replace_a_crash_between_delete_and_rename_leaves_a_readable_report(tmp_path):
    path = f"{NoRenameOver.SCHEME}://{tmp_path}/run-report.json"
    write_json_atomically(path, {"run_id": "1"})
    write_json_atomically(path, {"run_id": "2"})
    assert read_json_if_present(path) == {"run_id": "2"}
    NoRenameOver.crash_after_delete = True
    with pytest.raises(Crash):
        write_json_atomically(path, {"run_id": "3"})
    assert not os.path.exists(tmp_path / "run-report.json")  # the moment between the two steps
    assert read_json_if_present(path) == {"run_id": "3"}
    NoRenameOver.crash_after_delete = False
    write_json_atomically(path, {"run_id": "4"})  # the next run recovers
    assert read_json_if_present(path) == {"run_id": "4"}
