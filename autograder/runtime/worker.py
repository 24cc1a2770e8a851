"""The worker: imports the student's module and serves the trusted side's requests.

Started by the sandbox with its configuration as JSON in argv[1] (`python -m ... CONFIG`):
submission_dir, module (name), module_file, preload, forbidden_calls, fds [read, write].
It imports nothing of the grader but this runtime package, and knows no grader secrets.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import operator
import os
import sys
import time
import traceback
from typing import Any

from .contract import EMPTY_DICT_NODE, WorkerConfig
from .protocol import Channel, Decoder, Encoder, NotEncodable, ProtocolViolation

OPERATORS = {
    name: getattr(operator, name)
    for name in (
        "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "neg", "pos", "abs",
        "lt", "le", "gt", "ge", "eq", "ne", "getitem", "setitem", "contains", "truth", "invert",
        "and_", "or_", "xor", "lshift", "rshift", "index",
    )
}
OPERATORS.update(len=len, float=float, int=int, iter_list=lambda obj: list(obj), repr=repr, str=str,
                 bool=bool, complex=complex)
MAX_MESSAGE_CHARS = 4000


def _student_traceback(error: BaseException, module_file: str) -> str:
    """The traceback, keeping only frames of the submission's own files."""
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith(os.path.dirname(__file__))
    ]
    lines = traceback.format_list(frames[-8:])
    text = "".join(lines) + "".join(traceback.format_exception_only(type(error), error))
    # Paths relative to the submission, so feedback is the same on every run.
    text = text.replace(os.path.dirname(module_file) + os.sep, "")
    return text[-MAX_MESSAGE_CHARS:]


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)[:MAX_MESSAGE_CHARS]
    except BaseException:  # a hostile __str__
        return f"<{type(error).__name__} whose message cannot be shown>"


class Server:
    def __init__(self, config: WorkerConfig, module_file: str):
        self.config = config
        self.module_file = module_file
        self.channel = Channel(*config.fds)
        self.handles: dict[int, Any] = {}
        self.next_handle = 1
        self.module: Any = None
        self.rid: Any = None          # the request being served: every reply and callback names it
        self.next_callback = 1

    # ---------------------------------------------------------------- values
    def to_handle(self, value: Any) -> dict:
        handle_id = self.next_handle
        self.next_handle += 1
        self.handles[handle_id] = value
        try:
            type_name = type(value).__name__[:80]
        except BaseException:
            type_name = "object"
        return {"$": "handle", "id": handle_id, "type": type_name, "callable": callable(value)}

    def from_handle(self, node: dict) -> Any:
        handle_id = node.get("id")
        if handle_id not in self.handles:
            raise ProtocolViolation(f"unknown handle {handle_id!r}")
        return self.handles[handle_id]

    def from_callback(self, node: dict) -> Any:
        callback_id = node.get("id")
        server = self

        def trusted_callable(*args: Any, **kwargs: Any) -> Any:
            return server.call_back(callback_id, args, kwargs)

        return trusted_callable

    def decode(self, node: Any, buffers: list[bytes]) -> Any:
        return Decoder(buffers, from_handle=self.from_handle, from_callback=self.from_callback).decode(node)

    def send_value(self, key: str, value: Any, extra: dict | None = None) -> None:
        encoder = Encoder(to_handle=self.to_handle)
        try:
            tree = encoder.encode(value)
        except NotEncodable as error:
            self.send_error("UnsupportedValue", f"the returned value cannot be sent to the grader: {error}", "")
            return
        except BaseException as error:  # a hostile __len__, __iter__, ...
            self.send_error(type(error).__name__, f"the returned value could not be read: {_safe_str(error)}", "")
            return
        header = {key: tree, "rid": self.rid}
        if extra:
            header.update(extra)
        try:
            self.channel.send(header, encoder.buffers)
        except NotEncodable as error:
            self.send_error("UnsupportedValue", f"the returned value is too large to send: {error}", "")

    def send_error(self, type_name: str, message: str, trace: str) -> None:
        self.channel.send({"error": {"type": type_name[:100], "message": message[:MAX_MESSAGE_CHARS], "traceback": trace},
                           "rid": self.rid}, [])

    # ---------------------------------------------------------------- callbacks
    def call_back(self, callback_id: Any, args: tuple, kwargs: dict) -> Any:
        """Call a trusted function: send its arguments, serve nested requests until its result comes.

        Each callback has an id of its own, echoed by its result: a nested callback (student code
        that the trusted function reaches calls back again) gets its own result, never the outer one.
        """
        if self.rid is None:
            raise RuntimeError("the grader's function can only be called while the grader is calling your code")
        encoder = Encoder(to_handle=self.to_handle)
        try:
            tree = {"args": encoder.encode(list(args)), "kwargs": encoder.encode(dict(kwargs))}
        except NotEncodable as error:
            raise TypeError(f"the arguments given to the grader's function cannot be sent: {error}") from None
        call_id = self.next_callback
        self.next_callback += 1
        self.channel.send({"callback": callback_id, "cid": call_id, "rid": self.rid, **tree}, encoder.buffers)
        while True:  # serve nested requests until this callback's result arrives
            header, buffers = self.channel.receive()
            if header.get("op") == "callback_result":
                if header.get("cid") != call_id:
                    raise RuntimeError("the grader's function returned out of order")
                if "error" in header:
                    raise RuntimeError(f"the grader's function raised: {str(header['error'])[:500]}")
                return self.decode(header.get("ok"), buffers)
            self.handle(header, buffers)

    # ---------------------------------------------------------------- requests
    def target(self, header: dict, buffers: list[bytes]) -> Any:
        target = self.module if header.get("target") is None else self.decode(header["target"], buffers)
        name = header.get("name")
        if name is not None:
            if type(name) is not str:
                raise ProtocolViolation("attribute name must be a string")
            target = getattr(target, name)
        return target

    def handle(self, header: dict, buffers: list[bytes]) -> None:
        outer, self.rid = self.rid, header.get("rid")
        try:
            self._handle(header, buffers)
        finally:
            self.rid = outer

    def _handle(self, header: dict, buffers: list[bytes]) -> None:
        for handle_id in header.get("release", []) or []:
            self.handles.pop(handle_id, None)
        op = header.get("op")
        try:
            if op == "call":
                function = self.target(header, buffers)
                args = self.decode(header.get("args", []), buffers)
                kwargs = self.decode(header.get("kwargs", EMPTY_DICT_NODE), buffers)
                started = time.perf_counter()
                result = function(*args, **kwargs)
                self.send_value("ok", result, {"t": time.perf_counter() - started})  # measured, never trusted
            elif op == "getattr":
                self.send_value("ok", self.target(header, buffers))
            elif op == "setattr":
                target = self.module if header.get("target") is None else self.decode(header["target"], buffers)
                setattr(target, header["name"], self.decode(header.get("value"), buffers))
                self.send_value("ok", None)
            elif op == "operator":
                function = OPERATORS.get(header.get("name"))
                if function is None:
                    raise ProtocolViolation(f"unknown operator {header.get('name')!r}")
                self.send_value("ok", function(*self.decode(header.get("args", []), buffers)))
            elif op == "probe":
                self.run_probe(header, buffers)
            elif op == "names":
                self.send_value("ok", sorted(n for n in vars(self.module) if not n.startswith("_")))
            else:
                raise ProtocolViolation(f"unknown request {op!r}")
        except ProtocolViolation as error:
            self.send_error("ProtocolViolation", str(error), "")
        except SystemExit as error:
            self.send_error("SystemExit", f"student code called sys.exit({error.code!r}) during a graded call", "")
        except KeyboardInterrupt:
            self.send_error("KeyboardInterrupt", "student code raised KeyboardInterrupt", "")
        except BaseException as error:
            self.send_error(type(error).__name__, _safe_str(error), _student_traceback(error, self.module_file))

    def run_probe(self, header: dict, buffers: list[bytes]) -> None:
        from . import instruments

        function = self.target(header, buffers)
        args = self.decode(header.get("args", []), buffers)
        kwargs = self.decode(header.get("kwargs", EMPTY_DICT_NODE), buffers)
        options = self.decode(header.get("options", EMPTY_DICT_NODE), buffers)
        name = header.get("probe")
        if name == "op_trace":
            result, data = instruments.op_trace(lambda: function(*args, **kwargs))
        elif name == "peak_memory":
            result, data = instruments.peak_memory(lambda: function(*args, **kwargs))
        elif name == "numpy_warnings":
            result, data = instruments.numpy_warnings(lambda: function(*args, **kwargs))
        elif name == "autograd":
            result, data = instruments.autograd(function, args, kwargs, options.get("wrt", []), options.get("cotangents"))
        elif name == "module_autograd":
            result, data = instruments.module_autograd(function, args, kwargs, options.get("wrt", []), options.get("cotangents"))
        elif name == "autograd_trace":
            result, data = instruments.autograd_trace(function, args, kwargs, options.get("wrt", []), options.get("cotangents"))
        else:
            raise ProtocolViolation(f"unknown probe {name!r}")
        self.send_value("ok", (result, data))

    # ---------------------------------------------------------------- start-up
    def import_submission(self) -> None:
        config = self.config
        sys.path.insert(0, config.submission_dir)
        spec = importlib.util.spec_from_file_location(config.module, self.module_file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[config.module] = module
        spec.loader.exec_module(module)
        self.module = module

    def serve(self) -> None:
        try:
            self.import_submission()
        except SystemExit as error:
            self.send_error("SystemExit", f"the module called sys.exit({error.code!r}) while being imported", "")
            return
        except BaseException as error:
            self.send_error(type(error).__name__, f"importing the module failed: {_safe_str(error)}",
                            _student_traceback(error, self.module_file))
            return
        self.send_value("ok", {"pid": os.getpid()})
        while True:
            try:
                header, buffers = self.channel.receive()
            except EOFError:
                return
            if header.get("op") == "exit":
                return
            self.handle(header, buffers)


def preload(names: list[str]) -> None:
    """Import the libraries the assignment uses, torch pinned to one thread (safe to fork after)."""
    for name in names:
        module = importlib.import_module(name)
        if name == "torch":
            module.set_num_threads(1)
            module.set_num_interop_threads(1)
            os.environ.update(device_environment(probe_cuda=False))  # before a later preload imports triton
    from . import audit, guard, imports, instruments, isolation, seccomp  # noqa: F401  (loaded now: the sandbox hides this package)
    try:
        import pyseccomp  # noqa: F401  (loaded now, with its libseccomp, before the file system is narrowed)
    except Exception:  # noqa: BLE001
        pass


def device_environment(*, probe_cuda: bool = True) -> dict[str, str]:
    """TRITON_INTERPRET=1 where torch has no CUDA device: a Triton kernel then runs on the CPU through
    Triton's interpreter. Set before triton is imported (its own @jit functions read it). A process
    that forks (the zygote) passes probe_cuda=False: it judges by the build alone, never touching CUDA."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    cpu_only_build = torch.version.cuda is None and getattr(torch.version, "hip", None) is None
    if cpu_only_build or (probe_cuda and not torch.cuda.is_available()):
        return {"TRITON_INTERPRET": "1"}
    return {}


def run(raw: dict) -> None:
    """Guard, isolate, report the measures, then import the submission and serve; never returns."""
    config = WorkerConfig.from_dict(raw)
    channel = Channel(*config.fds)
    try:
        if config.rank:  # one rank of a group (autograder.sandbox.ranks): imported now, the sandbox hides this package
            from .ranks import join_process_group
        if config.forbidden_calls:
            from .guard import install_guard

            if "torch" in sys.modules:
                from . import instruments

                instruments.keep_trusted_copies()
            install_guard(list(config.forbidden_calls))
        disarmed = []
        if config.forbidden_ops and "torch" in sys.modules:
            from .guard import disarm_ops

            disarmed = disarm_ops(list(config.forbidden_ops))
        from .isolation import isolate, working_paths

        plan = dataclasses.asdict(config.isolation)
        measures = isolate(plan)
        measures["disarmed_ops"] = len(disarmed)
        if config.rank:  # join the group's process group before any student code loads
            measures["rank_group"] = join_process_group(config.rank)
    except BaseException as error:  # before any student code: the grader's or the machine's fault
        channel.send({"error": {"type": "IsolationFailed", "message": f"{type(error).__name__}: {error}"[:2000],
                                "traceback": ""}}, [])
        os._exit(0)
    submission, temporary = working_paths(plan)
    os.environ.clear()
    os.environ.update(config.environment, HOME=submission, TMPDIR=temporary)
    os.environ.update(device_environment())
    config = dataclasses.replace(config, submission_dir=submission)
    os.chdir(submission)
    if config.allowed_imports is not None:
        from .imports import install

        install(list(config.allowed_imports), list(config.forbidden_imports), submission, config.assignment)
    if config.seccomp:
        from .seccomp import install as install_seccomp

        try:
            installed = install_seccomp()
        except Exception as error:  # noqa: BLE001 - the kernel refused: recorded, the worker still runs
            installed = {"seccomp": False, "seccomp_note": f"seccomp refused: {type(error).__name__}: {error}"[:300]}
        measures["seccomp"] = installed["seccomp"]
        if "seccomp_note" in installed:
            measures.setdefault("notes", []).append(installed["seccomp_note"])
    if config.audit:
        from .audit import install as install_audit_hook

        install_audit_hook(submission)  # last: nothing of the runtime's own set-up is refused
        measures["audit_hook"] = True
    channel.send({"isolated": measures}, [])
    server = Server(config, os.path.join(submission, config.module + ".py"))
    server.serve()
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv if argv is None else argv
    config = json.loads(argv[1])
    preload(list(config.get("preload", [])))
    run(config)


if __name__ == "__main__":
    main()
