"""GPU assignment through lock files, tested without GPUs."""

import multiprocessing
import pytest
import torch

from fer.devices import acquire_device, claim_gpu, visible_gpu_ids


def test_visible_ids_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert visible_gpu_ids(2) == ["3", "5"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpu_ids(2) == ["0", "1"]


def test_two_claims_get_different_gpus(tmp_path):
    with claim_gpu(["0", "1"], tmp_path) as first:
        with claim_gpu(["0", "1"], tmp_path) as second:
            assert {first, second} == {0, 1}


def test_released_gpu_is_claimed_again(tmp_path):
    with claim_gpu(["0", "1"], tmp_path) as first:
        pass
    with claim_gpu(["0", "1"], tmp_path) as again:
        assert again == first


def test_claim_waits_and_times_out_when_all_busy(tmp_path):
    with claim_gpu(["0"], tmp_path):
        with pytest.raises(TimeoutError, match="no free GPU"):
            with claim_gpu(["0"], tmp_path, poll_seconds=0.05, timeout=0.2):
                pass


def _hold_gpu(lock_dir, queue, release):
    with claim_gpu(["0", "1", "2"], lock_dir, poll_seconds=0.05) as index:
        queue.put(index)
        release.wait(timeout=60)


def test_parallel_processes_each_get_their_own_gpu(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue, release = context.Queue(), context.Event()
    workers = [context.Process(target=_hold_gpu, args=(tmp_path, queue, release)) for _ in range(3)]
    for worker in workers:
        worker.start()
    claimed = sorted(queue.get(timeout=60) for _ in workers)
    release.set()
    for worker in workers:
        worker.join(timeout=60)
    assert claimed == [0, 1, 2]


def test_lock_of_killed_process_is_released(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue, release = context.Queue(), context.Event()
    holder = context.Process(target=_hold_gpu, args=(tmp_path, queue, release))
    holder.start()
    queue.get(timeout=60)
    holder.kill()
    holder.join()
    with claim_gpu(["0"], tmp_path, poll_seconds=0.05, timeout=5) as index:
        assert index == 0


def test_auto_without_gpu_is_cpu():
    if torch.cuda.is_available():
        pytest.skip("this test checks the fallback on a machine without CUDA")
    with acquire_device("auto") as device:
        assert device.type == "cpu"
