"""DropRepeats' per-process memory of the VMs handed on (transforms/sources/prism.py)."""
import threading

from transforms.sources.prism import DropRepeats


def bundle_of(fn: DropRepeats, *items) -> list:
    return [out for item in items for out in fn.process(item)]


def test_two_bundles_running_at_once_hand_a_vm_on_once():
    """Two threads of one process run two bundles of one pipeline at the same time (a
    multi-threaded runner): the VM both list is handed on by one of them only."""
    vm = ("pc", "vm-a")
    first, second = DropRepeats(token="run-1"), DropRepeats(token="run-1")  # the DoFn as each thread has it
    first.start_bundle()
    second.start_bundle()
    assert bundle_of(first, (vm, 1)) == [(vm, 1)]
    assert bundle_of(second, (vm, 2)) == []  # first has not finished its bundle yet
    first.finish_bundle()
    second.finish_bundle()


def test_threads_racing_on_the_same_vms_hand_each_on_once():
    keys = [("pc", f"vm-{i}") for i in range(2000)]
    fns = [DropRepeats(token="run-race") for _ in range(4)]
    start, handed_on = threading.Barrier(len(fns)), threading.Barrier(len(fns))
    out: list = []
    lock = threading.Lock()

    def run(fn):
        fn.start_bundle()
        start.wait()
        mine = bundle_of(fn, *((k, 0) for k in keys))
        handed_on.wait()  # every bundle is still running while the others hand their VMs on
        fn.finish_bundle()
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(k for k, _ in out) == sorted(keys)


def test_a_second_pipeline_in_the_process_leaves_the_first_ones_memory_alone():
    vm = ("pc", "vm-a")
    first = DropRepeats(token="pipeline-a")
    first.start_bundle()
    assert bundle_of(first, (vm, 1)) == [(vm, 1)]
    first.finish_bundle()
    other = DropRepeats(token="pipeline-b")  # another pipeline starts in the same process
    other.start_bundle()
    assert bundle_of(other, (vm, 1)) == [(vm, 1)]  # its own memory
    other.finish_bundle()
    first.start_bundle()
    assert bundle_of(first, (vm, 2)) == []  # still remembered for pipeline a
    first.finish_bundle()


def test_a_bundle_torn_down_unfinished_lets_its_retry_hand_its_vms_on():
    vm = ("pc", "vm-b")
    failed = DropRepeats(token="pipeline-retry")
    failed.start_bundle()
    assert bundle_of(failed, (vm, 1)) == [(vm, 1)]
    failed.teardown()  # the bundle failed: the runner discards the instance
    retry = DropRepeats(token="pipeline-retry")
    retry.start_bundle()
    assert bundle_of(retry, (vm, 1)) == [(vm, 1)]
    retry.finish_bundle()


def test_a_finished_pipelines_memory_is_freed_when_another_starts():
    from transforms.sources.prism import _SeenKeys
    done = DropRepeats(token="pipeline-done")
    done.start_bundle()
    bundle_of(done, (("pc", "vm"), 1))
    done.finish_bundle()
    done.teardown()
    assert "pipeline-done" in _SeenKeys._runs
    DropRepeats(token="pipeline-next").start_bundle()
    assert "pipeline-done" not in _SeenKeys._runs


def test_without_memory_a_finished_bundle_run_again_hands_its_vms_on_again():
    """Where a shuffle follows (runners that retry), a retried bundle that had finished
    (its first outputs thrown away) must hand on every VM again."""
    a, b = ("pc", "vm-a"), ("pc", "vm-b")
    fn = DropRepeats(token="pipeline-shuffled", remember=False)
    fn.start_bundle()
    assert [*fn.process((a, 1)), *fn.process((a, 2)), *fn.process((b, 1))] == [(a, 1), (b, 1)]  # within a bundle
    fn.finish_bundle()
    fn.start_bundle()  # the same bundle, run again
    assert [*fn.process((a, 1)), *fn.process((b, 1))] == [(a, 1), (b, 1)]
    fn.finish_bundle()
    fn.teardown()
