"""The int8 loop state: graph surgery on the full-integer converter's output (flatbuffer object API).

Full-integer conversion (TF 2.21) leaves the state a WHILE carries float:
the loop body QUANTIZEs each float loop variable on entry and DEQUANTIZEs
the new value on exit, and the outer graph DEQUANTIZEs the initial value
and QUANTIZEs the result. ``intify_while_state`` makes those variables int8
in named steps, one per place the variable appears:

    find_loop_variables      which WHILE inputs are float, and what int type and scale each takes
    retype_body_input        the body reads the integer directly; its QUANTIZE goes
    retype_body_output       the body's closing DEQUANTIZE goes or becomes a requantization
    retype_condition_input   the condition's (unread) copy of the variable
    retype_while_input       the op in front of the WHILE goes, becomes a requantization, or is added
    retype_while_output      the WHILE output becomes integer; the QUANTIZE after it goes
    check_loop_types         every WHILE's inputs, outputs and subgraph inputs/outputs agree

Every step checks the graph has the shape it expects before it changes
anything and raises ConversionError otherwise, so a converter that starts
writing another graph makes the export fail with a message, never a file
with mismatched loop types.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..errors import ConversionError
from .schema import builtin_code, operator_code_index, operator_names, tensor_type_names, tflite_schema

_INTEGER_TYPES = ("INT8", "UINT8", "INT16")


def _fail(why: str):
    raise ConversionError(f"int8 loop-state rewrite: {why}")


# -- small graph queries ----------------------------------------------------------------
def op_name(model, op) -> str:
    if not 0 <= op.opcodeIndex < len(model.operatorCodes):
        _fail(f"operator uses operator code {op.opcodeIndex} of {len(model.operatorCodes)}")
    builtin = builtin_code(model, op)
    return operator_names().get(builtin, f"builtin {builtin}")


def type_name(kind: int) -> str:
    return tensor_type_names().get(kind, f"type {kind}")


def producer(graph, tensor: int):
    """The first operator writing ``tensor`` (None for graph inputs and constants)."""
    return next((op for op in graph.operators if tensor in list(op.outputs)), None)


def consumers(graph, tensor: int) -> list:
    """Operators reading ``tensor``, each once however often it reads it."""
    return [op for op in graph.operators if tensor in list(op.inputs)]


def _reads(graph, tensor: int) -> int:
    """How many operator inputs and graph outputs name ``tensor``."""
    return sum(list(op.inputs).count(tensor) for op in graph.operators) + list(graph.outputs).count(tensor)


def same_quantization(a, b) -> bool:
    return (a is not None and b is not None
            and list(a.scale) == list(b.scale) and list(a.zeroPoint) == list(b.zeroPoint))


def _retype(tensor, int_type: int, params) -> None:
    tensor.type, tensor.quantization = int_type, copy.deepcopy(params)


def _rename_input(graph, old: int, new: int) -> None:
    """Every read of tensor ``old`` (operator inputs and graph outputs) reads ``new`` instead."""
    for op in graph.operators:
        op.inputs = [new if i == old else i for i in op.inputs]
    graph.outputs = [new if i == old else i for i in graph.outputs]


def _make_quantize(model, op) -> None:
    """Turn ``op`` into a QUANTIZE (integer in: a requantization to its output's scale)."""
    schema = tflite_schema()
    op.opcodeIndex = operator_code_index(model, schema.BuiltinOperator.QUANTIZE)
    op.builtinOptionsType = schema.BuiltinOptions.QuantizeOptions
    op.builtinOptions = schema.QuantizeOptionsT()


def _subgraph(model, index: int, what: str):
    if not 0 <= index < len(model.subgraphs):
        _fail(f"{what} refers to subgraph {index} of {len(model.subgraphs)}")
    return model.subgraphs[index]


# -- the loop variables ---------------------------------------------------------------------
@dataclass
class LoopVariable:
    """Loop variable ``index`` of one WHILE, and the integer type and quantization it takes."""

    graph: Any  # the subgraph holding the WHILE
    loop: Any  # the WHILE operator
    cond: Any  # its condition subgraph
    body: Any  # its body subgraph
    index: int
    quantize: Any  # the body's QUANTIZE of the variable (removed by retype_body_input)
    int_type: int
    params: Any  # QuantizationParametersT the variable takes in all five places

    @property
    def where(self) -> str:
        return f"loop variable {self.index}"


def while_loops(model) -> list[tuple[Any, Any, Any, Any]]:
    """(graph, WHILE, condition, body) of every WHILE, checked to be a loop this rewrite can own.

    A condition or body shared by two WHILEs (or used as both) would be
    rewritten twice; converters give each loop its own.
    """
    loops, seen = [], set()
    for g in model.subgraphs:
        for op in g.operators:
            if op_name(model, op) != "WHILE":
                continue
            options = op.builtinOptions
            if options is None or not hasattr(options, "condSubgraphIndex"):
                _fail("a WHILE operator has no WhileOptions")
            cond_index, body_index = options.condSubgraphIndex, options.bodySubgraphIndex
            cond = _subgraph(model, cond_index, "a WHILE condition")
            body = _subgraph(model, body_index, "a WHILE body")
            if cond_index == body_index or cond_index in seen or body_index in seen:
                _fail(f"subgraphs {cond_index}/{body_index} serve more than one WHILE")
            seen.update((cond_index, body_index))
            n = len(op.inputs)
            if not (len(op.outputs) == len(body.inputs) == len(body.outputs) == len(cond.inputs) == n):
                _fail(f"a WHILE of {n} inputs has {len(op.outputs)} outputs, a body of "
                      f"{len(body.inputs)} inputs and {len(body.outputs)} outputs and a condition of "
                      f"{len(cond.inputs)} inputs")
            loops.append((g, op, cond, body))
    return loops


def float_loop_variables(model, body) -> list[int]:
    """Positions of the body inputs that are float32 (the converter left them unquantized)."""
    float32 = tflite_schema().TensorType.FLOAT32
    return [k for k, t in enumerate(list(body.inputs)) if body.tensors[t].type == float32]


def find_loop_variable(model, graph, loop, cond, body, k: int) -> LoopVariable:
    """The body's QUANTIZE of float loop variable ``k`` and the type and scale the variable takes.

    The scale is that of the integer tensor the body's closing DEQUANTIZE
    reads, when there is one of the same type: the new value then needs no
    requantization. Otherwise it is the scale of the body's QUANTIZE.
    """
    t_in = body.inputs[k]
    users = consumers(body, t_in)
    if len(users) != 1 or op_name(model, users[0]) != "QUANTIZE" or list(users[0].inputs).count(t_in) != 1:
        _fail(f"loop variable {k} is not consumed by a single QUANTIZE "
              f"(read by {[op_name(model, u) for u in users]})")
    quant = users[0]
    if len(quant.outputs) != 1:
        _fail(f"loop variable {k}: its QUANTIZE has {len(quant.outputs)} outputs")
    q_tensor = body.tensors[quant.outputs[0]]
    if type_name(q_tensor.type) not in _INTEGER_TYPES or q_tensor.quantization is None \
            or q_tensor.quantization.scale is None or len(q_tensor.quantization.scale) == 0:
        _fail(f"loop variable {k} is quantized to {type_name(q_tensor.type)} without a scale")
    params, int_type = q_tensor.quantization, q_tensor.type
    t_out = body.outputs[k]
    closing = producer(body, t_out) if t_out != t_in else None
    if (closing is not None and op_name(model, closing) == "DEQUANTIZE"
            and body.tensors[closing.inputs[0]].type == int_type):
        params = body.tensors[closing.inputs[0]].quantization
    return LoopVariable(graph, loop, cond, body, k, quant, int_type, params)


# -- the steps ----------------------------------------------------------------------------
def retype_body_input(model, var: LoopVariable) -> None:
    """The body input becomes the integer tensor: readers of the QUANTIZE's output read it, the QUANTIZE goes."""
    body, t_in = var.body, var.body.inputs[var.index]
    if var.quantize not in body.operators:
        _fail(f"{var.where}: its QUANTIZE is no longer in the body")
    q_out = var.quantize.outputs[0]
    _retype(body.tensors[t_in], var.int_type, var.params)
    _rename_input(body, q_out, t_in)
    body.operators.remove(var.quantize)


def replace_dequantize(model, graph, dequant, params, int_type) -> int:
    """Remove or requantize a DEQUANTIZE whose output is read once, by what is being made integer.

    Returns the integer tensor to read in its place: the DEQUANTIZE's input
    when that already has ``params`` (the operator goes), else its own
    output, retyped, with the DEQUANTIZE turned into a QUANTIZE (an
    integer-to-integer requantization).
    """
    src, out = dequant.inputs[0], dequant.outputs[0]
    if type_name(graph.tensors[src].type) not in _INTEGER_TYPES:
        _fail(f"a DEQUANTIZE next to a loop reads {type_name(graph.tensors[src].type)}, not an integer tensor")
    if same_quantization(graph.tensors[src].quantization, params):
        graph.operators.remove(dequant)
        return src
    _make_quantize(model, dequant)
    _retype(graph.tensors[out], int_type, params)
    return out


def retype_body_output(model, var: LoopVariable) -> str:
    """The body's new value of the variable becomes integer; returns what was done.

    "passthrough": the body hands its input back unchanged; "bypassed": the
    closing DEQUANTIZE went; "requantized": it became a QUANTIZE.
    """
    body, k = var.body, var.index
    t_in, t_out = body.inputs[k], body.outputs[k]
    if t_out == t_in:
        return "passthrough"
    closing = producer(body, t_out)
    if closing is None or op_name(model, closing) != "DEQUANTIZE":
        _fail(f"{var.where}: body output not produced by DEQUANTIZE "
              f"({'nothing' if closing is None else op_name(model, closing)})")
    if _reads(body, t_out) != 1:
        _fail(f"{var.where}: the body's float new value is also read inside the body")
    source = replace_dequantize(model, body, closing, var.params, var.int_type)
    body.outputs[k] = source
    return "bypassed" if source != t_out else "requantized"


def retype_condition_input(model, var: LoopVariable) -> None:
    """The condition's copy of the variable takes the integer type; the condition must not read it."""
    cond, k = var.cond, var.index
    if consumers(cond, cond.inputs[k]):
        _fail(f"the loop condition reads float loop variable {k}")
    _retype(cond.tensors[cond.inputs[k]], var.int_type, var.params)


def retype_while_input(model, var: LoopVariable) -> str:
    """The WHILE's initial value becomes integer; returns what was done.

    When a DEQUANTIZE feeds only the WHILE, it goes ("bypassed") or becomes
    a requantization ("requantized"); otherwise a QUANTIZE is inserted in
    front of the WHILE ("inserted") and the float tensor stays for its other readers.
    """
    schema = tflite_schema()
    g, loop, k = var.graph, var.loop, var.index
    w_in = loop.inputs[k]
    feeding = producer(g, w_in)
    if feeding is not None and op_name(model, feeding) == "DEQUANTIZE" and _reads(g, w_in) == 1:
        source = replace_dequantize(model, g, feeding, var.params, var.int_type)
        loop.inputs[k] = source
        return "bypassed" if source != w_in else "requantized"
    t = copy.deepcopy(g.tensors[w_in])
    t.type, t.quantization, t.buffer = var.int_type, copy.deepcopy(var.params), 0
    t.name = (t.name or b"") + b"_int8"
    g.tensors.append(t)
    new_op = schema.OperatorT()
    new_op.inputs, new_op.outputs = [w_in], [len(g.tensors) - 1]
    _make_quantize(model, new_op)
    g.operators.insert(g.operators.index(loop), new_op)
    loop.inputs[k] = len(g.tensors) - 1
    return "inserted"


def retype_while_output(model, var: LoopVariable) -> int:
    """The WHILE's result becomes integer; QUANTIZEs after it go when they would not change the scale.

    Every reader must be a QUANTIZE (it stays, as a requantization, when the
    scale differs) and the result must not be a graph output: either would
    read an integer tensor where it expects a float one. Returns how many QUANTIZEs went.
    """
    g, loop, k = var.graph, var.loop, var.index
    w_out = loop.outputs[k]
    users = consumers(g, w_out)
    for user in users:
        if op_name(model, user) != "QUANTIZE":
            _fail(f"WHILE output {k} is read by {op_name(model, user)}")
    if w_out in list(g.outputs):
        _fail("a float WHILE output is a graph output")
    _retype(g.tensors[w_out], var.int_type, var.params)
    removed = 0
    for user in users:
        u_out = user.outputs[0]
        if same_quantization(g.tensors[u_out].quantization, var.params):
            _rename_input(g, u_out, w_out)
            g.operators.remove(user)
            removed += 1
    return removed


def check_loop_types(model) -> None:
    """Each loop variable has one type and quantization in all five places the WHILE needs them equal.

    The interpreter copies loop variables between the WHILE and its
    subgraphs as raw bytes, so a mismatch would be read wrongly, not refused.
    """
    for g, loop, cond, body in while_loops(model):
        for k in range(len(loop.inputs)):
            places = {"WHILE input": (g, loop.inputs[k]), "WHILE output": (g, loop.outputs[k]),
                      "body input": (body, body.inputs[k]), "body output": (body, body.outputs[k]),
                      "condition input": (cond, cond.inputs[k])}
            first_name, (first_graph, first) = next(iter(places.items()))
            if first < 0:
                continue  # an optional input: nothing is carried
            reference = first_graph.tensors[first]
            for name, (graph, t) in places.items():
                if not 0 <= t < len(graph.tensors):
                    _fail(f"loop variable {k}: {name} is tensor {t} of {len(graph.tensors)}")
                tensor = graph.tensors[t]
                if tensor.type != reference.type:
                    _fail(f"loop variable {k}: {name} is {type_name(tensor.type)} "
                          f"but the {first_name} is {type_name(reference.type)}")
                quantized = type_name(tensor.type) in _INTEGER_TYPES
                if quantized and not same_quantization(tensor.quantization, reference.quantization):
                    _fail(f"loop variable {k}: {name} has another quantization than the {first_name}")


# -- the whole rewrite --------------------------------------------------------------------------
def intify_while_state(model) -> int:
    """Make every float32 loop variable of each WHILE an int8 one; returns how many changed.

    Each variable takes the quantization of the integer tensor that feeds the
    body output, the body's QUANTIZE/DEQUANTIZE pair goes, and the ops around
    the WHILE become int8->int8 requantizations. Raises ConversionError if the
    graph is not of the expected shape (seen with TF 2.21).
    """
    changed = 0
    for g, loop, cond, body in while_loops(model):
        for k in float_loop_variables(model, body):
            var = find_loop_variable(model, g, loop, cond, body, k)
            retype_body_input(model, var)
            retype_body_output(model, var)
            retype_condition_input(model, var)
            retype_while_input(model, var)
            retype_while_output(model, var)
            changed += 1
    check_loop_types(model)
    return changed
