"""app.worker.QueueWorker overrides private methods of dramatiq.Worker: a Dramatiq upgrade that changes them
fails here, before it silently changes which prefetch and poll timeout each queue's consumer gets."""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap

import dramatiq
import dramatiq.broker
import dramatiq.worker
import pytest

from app.worker import QueueWorker

# What the override relies on: consumers are created one at a time by _add_consumer (called from the worker
# middleware as queues are declared), each reading queue_prefetch/delay_prefetch and worker_timeout from the
# worker when it is created; worker threads are created by _add_worker, each reading worker_timeout once.
# Hashes are of the code with docstrings removed (comments and layout do not count), recorded on Dramatiq 2.2.1.
PINNED = {
    "Worker.__init__": "2ac64f0ad09eba88",
    "Worker.start": "35e0c9aefb471878",
    "Worker._add_consumer": "4a0e6464a85ac5f4",
    "Worker._add_worker": "b02deb9ffe7e3cf2",
    "_WorkerMiddleware": "6963b061f069f2e9",
    "_ConsumerThread.__init__": "b2c912cdf0824685",
    "_WorkerThread.__init__": "62a6daf8d970809b",
    "Broker.add_middleware": "cc905b23b424e8f0",
}


def _target(name: str) -> object:
    owner, _, attribute = name.partition(".")
    module = dramatiq.broker if owner == "Broker" else dramatiq.worker
    found = getattr(module, owner)
    return getattr(found, attribute) if attribute else found


def code_hash(obj: object) -> str:
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))  # type: ignore[arg-type]
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.unparse(tree).encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_private_dramatiq_code_the_worker_overrides_is_unchanged(name: str) -> None:
    assert code_hash(_target(name)) == PINNED[name], (
        f"dramatiq {dramatiq.__version__} changed {name}. app.worker.QueueWorker overrides Worker._add_consumer and"
        " Worker._add_worker and sets queue_prefetch/worker_timeout around them: re-read the new code, check that"
        " each consumer and worker thread still takes its prefetch and timeout when it is created (and"
        " tests/system/test_worker.py still passes), then record the new hash here."
    )


def test_the_overridden_methods_still_exist_with_the_same_signatures() -> None:
    for method in ("_add_consumer", "_add_worker"):
        ours, theirs = getattr(QueueWorker, method), getattr(dramatiq.Worker, method)
        assert ours is not theirs, f"QueueWorker no longer overrides {method}: drop it from this pin"
        assert inspect.signature(ours) == inspect.signature(theirs), (
            f"dramatiq.Worker.{method} now takes {inspect.signature(theirs)}: re-check QueueWorker.{method}"
        )
