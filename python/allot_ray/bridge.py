"""The bridge between allot's driver and the Ray actors that hold the customers.

Run by `allot plan --solver ray` as a child process; it speaks a small binary
protocol on stdin/stdout (stderr is for logs):

* request (driver -> bridge): u64 little-endian length, then the encoded request;
  end of input ends the bridge (and its actors);
* answer (bridge -> driver): one status byte, then
  - b"O": u32 count, then count times (u64 length, encoded reply), one reply per
    partition in partition order;
  - b"E": u64 length, then a UTF-8 message: the solve must stop.

The first answer, before any request, describes the started actors: one reply
per partition, each a JSON object {"partition", "customers", "candidates", "node"}.

A dead actor is never silently replaced: its partition's state (the running
average of responses, the kept plan) lived in it, so the bridge answers "E" and
the driver abandons the solve without saving a plan.
"""

import argparse
import json
import os
import struct
import sys
import time

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError


@ray.remote(max_restarts=0, max_task_retries=0)
class PartitionActor:
    """One partition of customers, loaded once and kept across iterations."""

    def __init__(self, directory, partition):
        from allot_ray import _kernel

        self.worker = _kernel.Worker(directory, partition)
        self.compute = []

    def describe(self):
        customers, candidates = self.worker.size()
        return json.dumps(
            {
                "partition": self.worker.partition,
                "customers": customers,
                "candidates": candidates,
                "node": ray.get_runtime_context().get_node_id(),
                "pid": os.getpid(),
            }
        ).encode()

    def serve(self, request):
        started = time.perf_counter()
        reply = self.worker.serve(request)
        self.compute.append(time.perf_counter() - started)
        return reply

    def stats(self):
        """Seconds spent in the kernel, per request served."""
        return self.compute


def read_exact(stream, n):
    data = bytearray()
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data.extend(chunk)
    return bytes(data)


def answer_ok(out, replies):
    out.write(b"O" + struct.pack("<I", len(replies)))
    for reply in replies:
        out.write(struct.pack("<Q", len(reply)))
        out.write(reply)
    out.flush()


def answer_error(out, message):
    data = message.encode()
    out.write(b"E" + struct.pack("<Q", len(data)) + data)
    out.flush()


def gather(refs, what, timeout):
    """Every reply in partition order, or an error naming the first failed partition."""
    replies = []
    for i, ref in enumerate(refs):
        try:
            replies.append(ray.get(ref, timeout=timeout))
        except RayActorError as e:
            raise RuntimeError(f"partition {i}: its Ray actor died during {what} ({type(e).__name__}); its state is lost") from e
        except GetTimeoutError as e:
            raise RuntimeError(f"partition {i}: no answer to {what} within {timeout:.0f} s") from e
        except RayError as e:
            raise RuntimeError(f"partition {i}: {what} failed: {e}") from e
    return replies


def report_costs(actors, served, wall):
    """Prints where the requests' time went: the slowest actor's kernel time
    per request (the compute on the critical path), and the rest (Ray's
    scheduling, serialization, the object store, the pipe to the driver)."""
    try:
        per_actor = ray.get([a.stats.remote() for a in actors], timeout=60)
    except RayError:
        return
    if not served or any(len(c) != served for c in per_actor):
        return
    compute = sum(max(c[i] for c in per_actor) for i in range(served))
    print(
        f"allot_ray.bridge: {served} requests in {wall:.2f}s: compute on the critical path {compute:.2f}s "
        f"({1000 * compute / served:.1f} ms per request), communication and scheduling {wall - compute:.2f}s "
        f"({1000 * (wall - compute) / served:.1f} ms per request)",
        file=sys.stderr,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True, help="Ray cluster address (e.g. 127.0.0.1:6379, or 'auto')")
    parser.add_argument("--partitions-dir", required=True, help="directory written by allot (partitions.json and part-NNNN files)")
    parser.add_argument("--partitions", type=int, required=True, help="number of partitions (one actor each)")
    parser.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs Ray reserves per actor (its kernel's threads)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for one request's answers")
    args = parser.parse_args()

    out = sys.stdout.buffer
    # Ray and its workers print to stdout: keep the protocol stream to ourselves.
    sys.stdout = sys.stderr
    started = time.time()
    try:
        ray.init(address=args.address, logging_level="ERROR", log_to_driver=False)
        directory = os.path.abspath(args.partitions_dir)
        # Each actor's kernel runs rayon over its partition with as many threads
        # as the CPUs Ray reserves for it.
        threads = str(max(1, int(args.cpus_per_actor)))
        runtime_env = {"env_vars": {"RAYON_NUM_THREADS": threads}}
        actors = [
            PartitionActor.options(num_cpus=args.cpus_per_actor, runtime_env=runtime_env).remote(directory, i)
            for i in range(args.partitions)
        ]
        described = gather([a.describe.remote() for a in actors], "loading its partition", args.timeout)
    except Exception as e:  # noqa: BLE001 - any failure here is reported to the driver
        answer_error(out, f"cannot start the Ray actors: {e}")
        return 1
    print(f"allot_ray.bridge: {len(actors)} actors loaded in {time.time() - started:.1f}s", file=sys.stderr)
    answer_ok(out, described)

    stdin = sys.stdin.buffer
    served = 0
    wall = 0.0
    while True:
        header = read_exact(stdin, 8)
        if header is None:
            break
        (length,) = struct.unpack("<Q", header)
        request = read_exact(stdin, length)
        if request is None:
            break
        started = time.perf_counter()
        try:
            ref = ray.put(request)
            replies = gather([a.serve.remote(ref) for a in actors], f"request {served + 1}", args.timeout)
        except Exception as e:  # noqa: BLE001
            answer_error(out, str(e))
            return 1
        wall += time.perf_counter() - started
        answer_ok(out, replies)
        served += 1
    report_costs(actors, served, wall)
    for actor in actors:
        ray.kill(actor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
