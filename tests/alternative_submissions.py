"""Correct submissions written in other styles than the reference: each must get full marks.

The graded cells test behaviour through the public API, so any correct design passes. Each entry maps a
lab to named styles, and a style to the source of the solution cells it replaces (by ``grade_id``); the
other solution cells keep the reference's code. ``tests/test_grading.py`` autogrades them as the
submissions ``alt_<style>`` (see ``LabCase.alternatives`` in ``tests/grading_cases.py``).
"""

from __future__ import annotations

# ---------------------------------------------------------------- lab 01: micrograd-style closures
# Karpathy's structure: _prev a set, one helper that wraps numbers, the unary functions through one helper
# that builds the node from (value, local derivative); topological order with (node, iterator) pairs.
VALUE_MICROGRAD_STYLE = """
import math


def _as_value(x):
    if isinstance(x, Value):
        return x
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        import numbers
        if not isinstance(x, numbers.Real):
            raise TypeError(f"Value data must be a real number, got {type(x).__name__}")
    return Value(float(x))


class Value:
    def __init__(self, data, _children=(), _op="", label=""):
        import numbers
        if not isinstance(data, numbers.Real):
            raise TypeError(f"Value data must be a real number, got {type(data).__name__}")
        self.data = float(data)
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op
        self.label = label

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"

    def item(self):
        return self.data

    def _unary(self, data, local, op):
        out = Value(data, (self,), op)

        def _backward():
            self.grad += local * out.grad
        out._backward = _backward
        return out

    def __add__(self, other):
        other = _as_value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += 1.0 * out.grad
            other.grad += 1.0 * out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = _as_value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, n):
        if not isinstance(n, (int, float)):
            raise TypeError("only int/float powers are supported")
        if self.data == 0.0 and n < 1:
            local = math.inf if n > 0 else 0.0
        else:
            local = n * self.data ** (n - 1)
        return self._unary(self.data ** n, local, f"**{n}")

    def __neg__(self):
        return self._unary(-self.data, -1.0, "neg")

    def __sub__(self, other):
        other = _as_value(other)
        out = Value(self.data - other.data, (self, other), "-")

        def _backward():
            self.grad += out.grad
            other.grad -= out.grad
        out._backward = _backward
        return out

    def __truediv__(self, other):
        other = _as_value(other)
        if other.data == 0.0:
            raise ZeroDivisionError("division by zero")
        out = Value(self.data / other.data, (self, other), "/")

        def _backward():
            self.grad += out.grad / other.data
            other.grad += -self.data / other.data ** 2 * out.grad
        out._backward = _backward
        return out

    def __radd__(self, other):
        return self + other

    def __rsub__(self, other):
        return _as_value(other) - self

    def __rmul__(self, other):
        return self * other

    def __rtruediv__(self, other):
        return _as_value(other) / self

    def exp(self):
        e = math.exp(self.data)
        return self._unary(e, e, "exp")

    def log(self):
        if self.data <= 0:
            raise ValueError("log of a non-positive number")
        return self._unary(math.log(self.data), 1.0 / self.data, "log")

    def tanh(self):
        t = math.tanh(self.data)
        return self._unary(t, 1.0 - t ** 2, "tanh")

    def relu(self):
        return self._unary(max(self.data, 0.0), 1.0 if self.data > 0 else 0.0, "ReLU")

    def sigmoid(self):
        x = self.data
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        return self._unary(s, s * (1.0 - s), "sigmoid")

    def backward(self, gradient=1.0):
        topo = topological_order(self)
        for v in topo:
            if v._prev:
                v.grad = 0.0
        self.grad += gradient
        for v in reversed(topo):
            v._backward()

    def zero_grad(self):
        for v in topological_order(self):
            v.grad = 0.0
"""

TOPO_ITERATOR_STYLE = """
def topological_order(root):
    topo, visited = [], {root}
    stack = [(root, iter(root._prev))]
    while stack:
        node, children = stack[-1]
        for child in children:
            if child not in visited:
                visited.add(child)
                stack.append((child, iter(child._prev)))
                break
        else:
            stack.pop()
            topo.append(node)
    return topo
"""

# ---------------------------------------------------------------- lab 01: stored local derivatives
# No closure per node: each node stores its inputs and the local derivatives d(out)/d(input), computed at
# forward time; _backward is a method applying the chain rule from them. Topological order by Kahn's algorithm.
VALUE_STORED_DERIVATIVES = """
import math
import numbers


class Value:
    __slots__ = ("data", "grad", "label", "_op", "_prev", "_local")

    def __init__(self, data, _children=(), _op="", label="", _local=()):
        if not isinstance(data, numbers.Real):
            raise TypeError(f"Value data must be a real number, got {type(data).__name__}")
        self.data = float(data)
        self.grad = 0.0
        self._prev = tuple(_children)
        self._local = tuple(_local)
        self._op = _op
        self.label = label

    def _backward(self):
        for child, local in zip(self._prev, self._local):
            child.grad += local * self.grad

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"

    def item(self):
        return self.data

    @staticmethod
    def _wrap(x):
        return x if isinstance(x, Value) else Value(x)

    def __add__(self, other):
        other = self._wrap(other)
        return Value(self.data + other.data, (self, other), "+", _local=(1.0, 1.0))

    def __sub__(self, other):
        other = self._wrap(other)
        return Value(self.data - other.data, (self, other), "-", _local=(1.0, -1.0))

    def __mul__(self, other):
        other = self._wrap(other)
        return Value(self.data * other.data, (self, other), "*", _local=(other.data, self.data))

    def __truediv__(self, other):
        other = self._wrap(other)
        if other.data == 0:
            raise ZeroDivisionError("division by zero")
        return Value(self.data / other.data, (self, other), "/",
                     _local=(1.0 / other.data, -self.data / other.data ** 2))

    def __pow__(self, n):
        if not isinstance(n, (int, float)):
            raise TypeError("only int/float powers are supported")
        x = self.data
        local = (math.inf if n > 0 else 0.0) if x == 0 and n < 1 else n * x ** (n - 1)
        return Value(x ** n, (self,), f"**{n}", _local=(local,))

    def __neg__(self):
        return Value(-self.data, (self,), "neg", _local=(-1.0,))

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other):
        return Value(other) - self

    def __rtruediv__(self, other):
        return Value(other) / self

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), "exp", _local=(e,))

    def log(self):
        if self.data <= 0:
            raise ValueError("log needs a positive number")
        return Value(math.log(self.data), (self,), "log", _local=(1.0 / self.data,))

    def tanh(self):
        t = math.tanh(self.data)
        return Value(t, (self,), "tanh", _local=(1.0 - t * t,))

    def relu(self):
        return Value(self.data if self.data > 0 else 0.0, (self,), "ReLU", _local=(float(self.data > 0),))

    def sigmoid(self):
        x = self.data
        z = math.exp(-abs(x))
        s = 1.0 / (1.0 + z) if x >= 0 else z / (1.0 + z)
        return Value(s, (self,), "sigmoid", _local=(s * (1.0 - s),))

    def backward(self, gradient=1.0):
        order = topological_order(self)
        for v in order[:-1]:
            if v._prev:
                v.grad = 0.0
        if self._prev:
            self.grad = 0.0
        self.grad += gradient
        for v in reversed(order):
            v._backward()

    def zero_grad(self):
        for v in topological_order(self):
            v.grad = 0.0
"""

TOPO_KAHN_STYLE = """
def topological_order(root):
    # count, for every node, how many distinct nodes use it; then emit a node once all its users are done
    users = {root: 0}
    todo = [root]
    while todo:
        node = todo.pop()
        for child in set(node._prev):
            if child not in users:
                users[child] = 0
                todo.append(child)
            users[child] += 1
    reverse_order, ready = [], [root]
    while ready:
        node = ready.pop()
        reverse_order.append(node)
        for child in set(node._prev):
            users[child] -= 1
            if users[child] == 0:
                ready.append(child)
    return reverse_order[::-1]
"""

# ---------------------------------------------------------------- lab 02: a Tensor with _backward closures
# The documents' Quick Reference design on arrays: every op builds ``out`` with ``_prev`` (its inputs that
# need a gradient) and a ``_backward`` closure that adds into its inputs' ``grad`` from ``out.grad``; no
# Function/ctx. It replaces the given Tensor class (in the first solution cell) and writes the ops of the
# later exercises as methods; its own unbroadcast and topological order.
TENSOR_CLOSURES = """
import numpy as np


def _sum_to(grad, shape):
    return grad if grad.shape == tuple(shape) else unbroadcast(grad, tuple(shape))


def _add_grad(node, grad):
    grad = _sum_to(np.asarray(grad), node.data.shape)
    if node.grad is None:
        node.grad = np.array(grad, dtype=node.data.dtype)  # a copy the node owns
    elif node.grad.flags.writeable:
        node.grad += grad
    else:
        node.grad = node.grad + grad


class Tensor:
    __array_ufunc__ = None  # NumPy scalars and arrays defer to the reflected operators below

    def __init__(self, data, requires_grad=False, dtype=None, _children=(), _op=""):
        data = data.data if isinstance(data, Tensor) else data
        array = np.array(data, dtype=dtype)
        if dtype is None and array.dtype.kind == "f":
            array = array.astype(np.float32)
        self.data, self.grad, self.requires_grad = array, None, bool(requires_grad)
        self._prev, self._op, self._backward, self._released = tuple(_children), _op, None, False

    # -------------------------------------------------------- plumbing
    def _wrap(self, x):
        if isinstance(x, Tensor):
            return x
        dtype = self.data.dtype if self.data.dtype.kind == "f" else None
        return Tensor(np.asarray(x, dtype=dtype))

    def _result(self, data, inputs, op):
        needs = [t for t in inputs if t.requires_grad]
        out = Tensor.__new__(Tensor)
        out.data, out.grad, out.requires_grad = np.asarray(data), None, bool(needs)
        out._prev, out._op, out._backward, out._released = tuple(needs), op, None, False
        return out

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    grad_fn = property(lambda self: self._op or None)
    T = property(lambda self: self.transpose())

    def item(self):
        return self.data.item()

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        return f"Tensor({self.data})"

    def zero_grad(self):
        self.grad = None

    # -------------------------------------------------------- arithmetic
    def __add__(self, other):
        other = self._wrap(other)
        out = self._result(self.data + other.data, (self, other), "+")
        def _backward():
            for t in (self, other):
                if t.requires_grad:
                    _add_grad(t, out.grad)
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = self._wrap(other)
        x, y = self.data, other.data
        out = self._result(x * y, (self, other), "*")
        def _backward():
            if self.requires_grad:
                _add_grad(self, out.grad * y)
            if other.requires_grad:
                _add_grad(other, out.grad * x)
        out._backward = _backward
        return out

    def __pow__(self, other):
        other = self._wrap(other)
        x, y = self.data, other.data
        out = self._result(x ** y, (self, other), "**")
        def _backward():
            if self.requires_grad:
                _add_grad(self, out.grad * y * x ** (y - 1))
            if other.requires_grad:
                _add_grad(other, out.grad * out.data * np.log(x))
        out._backward = _backward
        return out

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-self._wrap(other))

    def __truediv__(self, other):
        return self * self._wrap(other) ** -1

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other):
        return self._wrap(other) - self

    def __rtruediv__(self, other):
        return self._wrap(other) / self

    def __rpow__(self, other):
        return self._wrap(other) ** self

    def __matmul__(self, other):
        other = self._wrap(other)
        x, y = self.data, other.data
        try:
            data = np.matmul(x, y)
        except ValueError:
            raise ValueError(f"matmul: shapes {x.shape} and {y.shape} are not aligned") from None
        out = self._result(data, (self, other), "@")
        def _backward():
            g = out.grad
            if x.ndim == 1 and y.ndim == 1:
                gx, gy = g * y, g * x
            else:
                xx = x[None, :] if x.ndim == 1 else x
                yy = y[:, None] if y.ndim == 1 else y
                gg = np.expand_dims(g, -2) if x.ndim == 1 else g
                gg = np.expand_dims(gg, -1) if y.ndim == 1 else gg
                gx = gg @ np.swapaxes(yy, -1, -2)
                gy = np.swapaxes(xx, -1, -2) @ gg
                gx = _sum_to(gx, xx.shape).reshape(x.shape) if x.ndim == 1 else gx
                gy = _sum_to(gy, yy.shape).reshape(y.shape) if y.ndim == 1 else gy
            if self.requires_grad:
                _add_grad(self, gx)
            if other.requires_grad:
                _add_grad(other, gy)
        out._backward = _backward
        return out

    def __rmatmul__(self, other):
        return self._wrap(other) @ self

    # -------------------------------------------------------- elementwise functions
    def _unary(self, data, local, op):
        out = self._result(data, (self,), op)
        def _backward():
            _add_grad(self, out.grad * local(out.data))
        out._backward = _backward
        return out

    def exp(self):
        return self._unary(np.exp(self.data), lambda y: y, "exp")

    def log(self):
        x = self.data
        return self._unary(np.log(x), lambda y: 1 / x, "log")

    def tanh(self):
        return self._unary(np.tanh(self.data), lambda y: 1 - y * y, "tanh")

    def sigmoid(self):
        return self._unary(0.5 * (1 + np.tanh(0.5 * self.data)), lambda y: y * (1 - y), "sigmoid")

    def relu(self):
        return self._unary(np.maximum(self.data, 0), lambda y: y > 0, "relu")

    # -------------------------------------------------------- reductions
    def _reduce(self, data, axis, keepdims, local, op):
        out = self._result(data, (self,), op)
        shape = self.data.shape
        def _backward():
            g = out.grad if keepdims or axis is None else np.expand_dims(out.grad, axis)
            _add_grad(self, np.broadcast_to(local(g), shape))
        out._backward = _backward
        return out

    def sum(self, axis=None, keepdims=False):
        return self._reduce(self.data.sum(axis=axis, keepdims=keepdims), axis, keepdims, lambda g: g, "sum")

    def mean(self, axis=None, keepdims=False):
        data = self.data.mean(axis=axis, keepdims=keepdims)
        count = self.data.size // max(np.size(data), 1)
        return self._reduce(data, axis, keepdims, lambda g: g / count, "mean")

    def max(self, axis=None, keepdims=False):
        x = self.data
        m = x.max(axis=axis, keepdims=True)
        mask = x == m
        count = mask.sum(axis=axis, keepdims=True, dtype=x.dtype)
        data = m if keepdims else (m.reshape(()) if axis is None else np.squeeze(m, axis))
        return self._reduce(data, axis, keepdims, lambda g: mask * (g / count), "max")

    # -------------------------------------------------------- shapes and indexing
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        old = self.data.shape
        out = self._result(self.data.reshape(shape), (self,), "reshape")
        def _backward():
            _add_grad(self, out.grad.reshape(old))
        out._backward = _backward
        return out

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None)
        out = self._result(self.data.transpose(axes), (self,), "transpose")
        def _backward():
            _add_grad(self, out.grad.transpose(None if axes is None else np.argsort(axes)))
        out._backward = _backward
        return out

    def __getitem__(self, index):
        index = index.data if isinstance(index, Tensor) else index
        out = self._result(self.data[index], (self,), "getitem")
        def _backward():
            full = np.zeros(self.data.shape, dtype=self.data.dtype)
            items = index if isinstance(index, tuple) else (index,)
            if any(isinstance(i, (list, np.ndarray)) for i in items):
                np.add.at(full, index, out.grad)  # an element selected several times gets every contribution
            else:
                full[index] = out.grad
            _add_grad(self, full)
        out._backward = _backward
        return out

    # -------------------------------------------------------- backward
    def backward(self, gradient=None, retain_graph=False):
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError("backward() of a tensor with more than one element needs a gradient")
            gradient = np.ones(self.data.shape)
        order = topological_order(self)
        for node in order:
            if node._prev:
                node.grad = None
        _add_grad(self, np.broadcast_to(np.asarray(gradient, dtype=self.data.dtype), self.data.shape))
        for node in reversed(order):
            if node._backward is not None and node.grad is not None:
                node._backward()
            if node._prev:
                node.grad = None
                if not retain_graph:
                    node._backward, node._prev, node._released = None, (), True
"""

TOPO_CLOSURES = """
def topological_order(root):
    if root._released:
        raise RuntimeError("backward through a graph a second time: its closures were released by the first backward()")
    order, done, stack = [], set(), [(root, iter(root._prev))]
    seen = {id(root)}
    while stack:
        node, children = stack[-1]
        for child in children:
            if id(child) not in seen:
                if child._released:
                    raise RuntimeError("backward through a graph a second time")
                seen.add(id(child))
                stack.append((child, iter(child._prev)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def run_backward(root, gradient, retain_graph=False):
    root.backward(gradient, retain_graph)
"""

UNBROADCAST_OWN = """
def unbroadcast(grad, shape):
    shape = tuple(shape)
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    if grad.shape != shape:
        raise ValueError(f"cannot sum a gradient of shape {grad.shape} back to {shape}")
    return np.asarray(grad)
"""

WRITTEN_ABOVE = "# written as closures in the Tensor class (first exercise cell)\n"


ALTERNATIVES = {
    "01_value": {
        "closures": {"value_class": VALUE_MICROGRAD_STYLE, "topological_order": TOPO_ITERATOR_STYLE},
        "stored": {"value_class": VALUE_STORED_DERIVATIVES, "topological_order": TOPO_KAHN_STYLE},
    },
    "02_tensor": {
        "closures": {
            "elementwise": TENSOR_CLOSURES,
            "backward_engine": TOPO_CLOSURES,
            "unbroadcast": UNBROADCAST_OWN,
            "matmul": WRITTEN_ABOVE,
            "unary": WRITTEN_ABOVE,
            "reductions": WRITTEN_ABOVE,
            "shape_ops": WRITTEN_ABOVE,
        },
    },
}
