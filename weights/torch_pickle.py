"""A restricted reader of PyTorch files that needs no PyTorch: state dicts and TorchScript.

``torch.save(model.state_dict(), path)`` writes a pickle whose tensors point into raw storages.
:func:`read_state_dict` reads both formats PyTorch writes: the legacy one (torch < 1.6: magic
number, protocol version, system info, the pickled dict, the storage list, then each storage's
bytes) and the zip archive of torch >= 1.6 (``<name>/data.pkl`` and ``<name>/data/<key>``),
little-endian only, and returns plain numpy arrays.

``torch.jit.save`` writes a TorchScript archive: the same zip layout, but ``data.pkl`` holds the
module tree, each module an object of a class ``__torch__.<module>.<Class>`` whose attributes are
its tensors, its submodules and plain values (the code in ``code/`` is never read).
:func:`read_torchscript_tensors` walks that tree and returns every tensor under its dotted
attribute path, in the order the modules were created.

Unpickling can call any importable function, so loading an untrusted ``.pth`` with ``pickle``
(or ``torch.load`` without ``weights_only``) can run arbitrary code. This reader's unpickler
resolves only the three kinds of name a state dict of tensors needs:
``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` (which here builds a reference
to a storage, not a tensor) and the ``torch.*Storage`` types; in a TorchScript archive also
``torch._utils._rebuild_parameter``, the typed-list constructors of ``torch.jit._pickle`` and
the ``__torch__.*`` module classes, each of which
becomes an inert attribute holder (:class:`ScriptObject`) whose methods are never looked up.
Any other name, a persistent id
that is not a storage, a storage view (torch < 1.0), a big-endian file, an entry that is not a
tensor or a truncated file raises :class:`CheckpointError`, naming the file; nothing from the
file is ever called.

Example:

```python
state = read_state_dict("efficientnet-lite0-57934424.pth")
state["_conv_stem.weight"].shape    # (32, 3, 3, 3), a writable float32 numpy array
read_state_dict("evil.pth")         # CheckpointError: evil.pth: refusing to load posix.system: …
tensors = read_torchscript_tensors("default_1.pt")
tensors["net.layers.conv.weight"].shape     # (32, 3, 3, 3)
```
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from typing import Any, NamedTuple

import numpy as np


class CheckpointError(ValueError):
    """A PyTorch checkpoint cannot be read safely or does not match the model it is loaded into.

    The message starts with the file.
    """

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path}: {message}")


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
                   "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
                   "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?"}


class _StorageType(NamedTuple):
    name: str
    dtype: np.dtype


class _Storage:
    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.array: np.ndarray | None = None


class _TensorRef(NamedTuple):
    storage: _Storage
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       metadata=None) -> _TensorRef:
    del requires_grad, backward_hooks, metadata
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor whose storage is not a persistent storage")
    return _TensorRef(storage, int(storage_offset), tuple(map(int, size)), tuple(map(int, stride)))


def _rebuild_parameter(data, requires_grad, backward_hooks, *state) -> _TensorRef:
    del requires_grad, backward_hooks, state
    if not isinstance(data, _TensorRef):
        raise pickle.UnpicklingError("a parameter that is not a tensor")
    return data


#: TorchScript's typed-list constructors (``torch.jit._pickle``); each returns its list.
_SCRIPT_LISTS = ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist")


class ScriptObject:
    """A TorchScript module read from an archive: only its pickled attributes, no behaviour.

    ``type_name`` is the module's class (``__torch__.inceptionv3.Conv2dLayer``); ``attributes``
    its attributes in the archive's order (tensors as references, submodules as
    :class:`ScriptObject`, plain values as they are).
    """

    type_name = "ScriptObject"

    def __init__(self):
        self.attributes: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{self.type_name}: state is not a dict of attributes")
        self.attributes = dict(state)


def _script_class(qualified_name: str) -> type:
    return type("ScriptObject", (ScriptObject,), {"type_name": qualified_name})


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a state dict, allowing only the globals a state dict of tensors needs (and,
    with ``script_modules``, the module classes of a TorchScript archive as
    :class:`ScriptObject`)."""

    def __init__(self, file, path: str, script_modules: bool = False):
        super().__init__(file)
        self.path = path
        self.script_modules = script_modules
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, np.dtype(_STORAGE_DTYPES[name]))
        if self.script_modules:
            if (module, name) == ("torch._utils", "_rebuild_parameter"):
                return _rebuild_parameter
            if module == "torch.jit._pickle" and name in _SCRIPT_LISTS:
                return list  # List[int] and the like, pickled as build_intlist([...])
            if module.startswith("__torch__.") or module == "__torch__":
                return _script_class(f"{module}.{name}")
        raise CheckpointError(self.path, f"refusing to load {module}.{name}: a state dict of "
                              "tensors needs only collections.OrderedDict, "
                              "torch._utils._rebuild_tensor_v2 and torch.*Storage")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise CheckpointError(self.path, f"unsupported persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel = pid[:5]
        if len(pid) == 6 and pid[5] is not None:
            raise CheckpointError(self.path, "storage views (torch < 1.0) are not supported")
        storage = self.storages.setdefault(str(key), _Storage(str(key), storage_type.dtype,
                                                              int(numel)))
        if storage.dtype != storage_type.dtype or storage.numel != int(numel):
            raise CheckpointError(self.path, f"storage {key} is declared with two types")
        return storage


class _PlainUnpickler(_StateDictUnpickler):
    """For the legacy format's header records: plain values only, no storages."""

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError(self.path, "unexpected storage in a header record")


#: What a damaged or foreign file makes the unpickler or the zip reader raise.
_UNREADABLE = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
               AttributeError, zipfile.BadZipFile)


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """Reads a PyTorch ``state_dict`` file without PyTorch and without running code from it.

    Args:
        path: a ``.pth`` / ``.pt`` file written by ``torch.save(model.state_dict(), path)``,
            in the legacy format or the zip format of torch >= 1.6 (little-endian).

    Returns:
        ``{name: numpy array}`` in the file's order, arrays contiguous and writable.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointError: the file refers to anything but tensors (e.g. a function to call),
            is truncated, or is not a PyTorch checkpoint; the message names the file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        data = f.read()
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            obj, storages = _read_zip(data, path)
        else:
            obj, storages = _read_legacy(data, path)
    except CheckpointError:
        raise
    except _UNREADABLE as e:
        raise CheckpointError(path, f"not a readable PyTorch state dict ({e})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(path, f"holds a {type(obj).__name__}, not a state dict")
    state = {}
    for name, ref in obj.items():
        if not isinstance(ref, _TensorRef):
            raise CheckpointError(path, f"entry {name!r} is a {type(ref).__name__}, not a tensor")
        state[str(name)] = _materialize(ref, path, name)
    unused = set(storages) - {ref.storage.key for ref in obj.values()}
    if unused:
        raise CheckpointError(path, f"storages not used by any tensor: {sorted(unused)[:5]}")
    return state


def read_torchscript_tensors(path: str) -> dict[str, np.ndarray]:
    """Reads every tensor of a TorchScript archive without PyTorch and without running its code.

    Args:
        path: a file written by ``torch.jit.save`` (a zip archive, little-endian).

    Returns:
        ``{dotted attribute path: numpy array}`` for every tensor attribute of every module, in
        the archive's order (a module's attributes in the order they were set, depth first),
        e.g. ``"net.layers.mixed.conv.weight"``.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointError: not a TorchScript archive, a name outside the allowed ones, a storage
            missing or truncated; the message names the file.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such TorchScript file")
    with open(path, "rb") as f:
        data = f.read()
    try:
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise CheckpointError(path, "not a TorchScript archive (not a zip file)")
        root, _ = _read_zip(data, path, script_modules=True)
    except CheckpointError:
        raise
    except _UNREADABLE as e:
        raise CheckpointError(path, f"not a readable TorchScript archive ({e})") from None
    if not isinstance(root, ScriptObject):
        raise CheckpointError(path, f"holds a {type(root).__name__}, not a TorchScript module")
    tensors: dict[str, np.ndarray] = {}
    stack = [("", root)]
    while stack:
        prefix, module = stack.pop()
        children = []
        for name, value in module.attributes.items():
            if isinstance(value, _TensorRef):
                tensors[prefix + name] = _materialize(value, path, prefix + name)
            elif isinstance(value, ScriptObject):
                children.append((f"{prefix}{name}.", value))
        stack.extend(reversed(children))
    return tensors


def _read_legacy(data: bytes, path: str) -> tuple[Any, dict[str, _Storage]]:
    f = io.BytesIO(data)
    if _PlainUnpickler(f, path).load() != _LEGACY_MAGIC:
        raise CheckpointError(path, "not a PyTorch checkpoint (no zip archive, no legacy magic)")
    if _PlainUnpickler(f, path).load() != _LEGACY_PROTOCOL:
        raise CheckpointError(path, "unsupported legacy PyTorch protocol version")
    sys_info = _PlainUnpickler(f, path).load()
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", False)):
        raise CheckpointError(path, "big-endian checkpoints are not supported")
    unpickler = _StateDictUnpickler(f, path)
    obj = unpickler.load()
    keys = _PlainUnpickler(f, path).load()
    if not isinstance(keys, list) or set(map(str, keys)) != set(unpickler.storages):
        raise CheckpointError(path, "the storage list does not match the tensors")
    for key in keys:
        storage = unpickler.storages[str(key)]
        header = f.read(8)
        numel = int.from_bytes(header, "little", signed=True) if len(header) == 8 else -1
        if numel != storage.numel:
            raise CheckpointError(path, f"storage {key}: truncated file or bad size record")
        storage.array = _storage_array(f.read(numel * storage.dtype.itemsize), storage, path)
    if f.read(1):
        raise CheckpointError(path, "unexpected bytes after the last storage")
    return obj, unpickler.storages


def _read_zip(data: bytes, path: str, script_modules: bool = False
              ) -> tuple[Any, dict[str, _Storage]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(path, "zip archive without exactly one <name>/data.pkl")
        prefix = pickles[0][:-len("data.pkl")]
        names = set(archive.namelist())
        if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder") != b"little":
            raise CheckpointError(path, "big-endian checkpoints are not supported")
        unpickler = _StateDictUnpickler(io.BytesIO(archive.read(pickles[0])), path,
                                        script_modules)
        obj = unpickler.load()
        for key, storage in unpickler.storages.items():
            if f"{prefix}data/{key}" not in names:
                raise CheckpointError(path, f"storage {key} is missing from the archive")
            storage.array = _storage_array(archive.read(f"{prefix}data/{key}"), storage, path)
    return obj, unpickler.storages


def _storage_array(raw: bytes, storage: _Storage, path: str) -> np.ndarray:
    if len(raw) != storage.numel * storage.dtype.itemsize:
        raise CheckpointError(path, f"storage {storage.key}: truncated ({len(raw)} bytes, "
                              f"expected {storage.numel} × {storage.dtype.itemsize})")
    return np.frombuffer(raw, storage.dtype)


def _materialize(ref: _TensorRef, path: str, name: str) -> np.ndarray:
    array = ref.storage.array
    if array is None:
        raise CheckpointError(path, f"tensor {name!r}: its storage has no data")
    if len(ref.size) != len(ref.stride) or min(ref.size + ref.stride + (ref.offset,),
                                               default=0) < 0:
        raise CheckpointError(path, f"tensor {name!r}: invalid size/stride {ref.size}/"
                              f"{ref.stride}")
    if 0 in ref.size:
        return np.zeros(ref.size, array.dtype.newbyteorder("="))
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if last >= array.size:
        raise CheckpointError(path, f"tensor {name!r} reaches past the end of its storage")
    view = np.lib.stride_tricks.as_strided(
        array[ref.offset:], shape=ref.size,
        strides=[s * array.dtype.itemsize for s in ref.stride], writeable=False)
    return np.array(view, dtype=array.dtype.newbyteorder("="), order="C")  # a writable copy
