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
VALUE_MICROGRAD_STYLE = '''
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
'''

TOPO_ITERATOR_STYLE = '''
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
'''

# ---------------------------------------------------------------- lab 01: stored local derivatives
# No closure per node: each node stores its inputs and the local derivatives d(out)/d(input), computed at
# forward time; _backward is a method applying the chain rule from them. Topological order by Kahn's algorithm.
VALUE_STORED_DERIVATIVES = '''
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
'''

TOPO_KAHN_STYLE = '''
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
'''

ALTERNATIVES = {
    "01_value": {
        "closures": {"value_class": VALUE_MICROGRAD_STYLE, "topological_order": TOPO_ITERATOR_STYLE},
        "stored": {"value_class": VALUE_STORED_DERIVATIVES, "topological_order": TOPO_KAHN_STYLE},
    },
}
