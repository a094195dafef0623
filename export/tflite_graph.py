"""TFLite graph surgery on the converter's output (flatbuffer object API)."""
from __future__ import annotations

import copy

from .errors import ConversionError

# -- full-integer loop state -----------------------------------------------------------
def intify_while_state(model) -> int:
    """Make every float32 loop variable of each WHILE an int8 one; returns how many changed.

    The quantizer leaves loop-carried tensors float with QUANTIZE/DEQUANTIZE
    in the body. Each such variable takes the quantization of the integer
    tensor that feeds the body output, the body's QUANTIZE/DEQUANTIZE pair
    goes, and the ops around the WHILE become int8->int8 requantizations.
    Raises if the graph is not of the expected shape (seen with TF 2.21).
    """
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k for k, v in schema.BuiltinOperator.__dict__.items() if not k.startswith("_")}

    def op_name(op):
        code = model.operatorCodes[op.opcodeIndex]
        return names[max(code.builtinCode, code.deprecatedBuiltinCode)]

    def quantize_code():
        want = schema.BuiltinOperator.QUANTIZE
        for i, code in enumerate(model.operatorCodes):
            if max(code.builtinCode, code.deprecatedBuiltinCode) == want:
                return i
        code = schema.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.version = want, min(want, 127), 1
        model.operatorCodes.append(code)
        return len(model.operatorCodes) - 1

    q_index = quantize_code()

    def make_quantize(op):
        op.opcodeIndex = q_index
        op.builtinOptionsType = schema.BuiltinOptions.QuantizeOptions
        op.builtinOptions = schema.QuantizeOptionsT()

    def producer(g, t):
        return next((op for op in g.operators if t in list(op.outputs)), None)

    def consumers(g, t):
        return [op for op in g.operators if t in list(op.inputs)]

    def same_quantization(a, b):
        return a is not None and b is not None and list(a.scale) == list(b.scale) and list(a.zeroPoint) == list(b.zeroPoint)

    def fail(why):
        raise ConversionError(f"int8 loop-state rewrite: {why}")

    changed = 0
    for g in model.subgraphs:
        for loop in [op for op in g.operators if op_name(op) == "WHILE"]:
            cond = model.subgraphs[loop.builtinOptions.condSubgraphIndex]
            body = model.subgraphs[loop.builtinOptions.bodySubgraphIndex]
            for k, t_in in enumerate(list(body.inputs)):
                tensor = body.tensors[t_in]
                if tensor.type != schema.TensorType.FLOAT32:
                    continue
                users = consumers(body, t_in)
                if len(users) != 1 or op_name(users[0]) != "QUANTIZE":
                    fail(f"loop variable {k} is not consumed by a single QUANTIZE")
                quant = users[0]
                q_out = quant.outputs[0]
                params, int_type = body.tensors[q_out].quantization, body.tensors[q_out].type
                out_producer = producer(body, body.outputs[k]) if body.outputs[k] != t_in else None
                if (out_producer is not None and op_name(out_producer) == "DEQUANTIZE"
                        and body.tensors[out_producer.inputs[0]].type == int_type):
                    params = body.tensors[out_producer.inputs[0]].quantization
                # 1. the body input becomes integer and its QUANTIZE goes
                tensor.type, tensor.quantization = int_type, copy.deepcopy(params)
                for op in body.operators:
                    op.inputs = [t_in if i == q_out else i for i in op.inputs]
                body.outputs = [t_in if i == q_out else i for i in body.outputs]
                body.operators.remove(quant)
                # 2. the body output
                t_out = body.outputs[k]
                if t_out != t_in:
                    p = producer(body, t_out)
                    if p is None or op_name(p) != "DEQUANTIZE":
                        fail(f"loop variable {k}: body output not produced by DEQUANTIZE")
                    src = p.inputs[0]
                    if same_quantization(body.tensors[src].quantization, params) and not consumers(body, t_out):
                        body.outputs[k] = src
                        body.operators.remove(p)
                    else:
                        make_quantize(p)
                        body.tensors[t_out].type = int_type
                        body.tensors[t_out].quantization = copy.deepcopy(params)
                # 3. the condition's copy of the variable (unused by the condition here)
                if consumers(cond, cond.inputs[k]):
                    fail(f"the loop condition reads float loop variable {k}")
                cond.tensors[cond.inputs[k]].type = int_type
                cond.tensors[cond.inputs[k]].quantization = copy.deepcopy(params)
                # 4. the WHILE input in the outer graph
                w_in = loop.inputs[k]
                p = producer(g, w_in)
                if p is not None and op_name(p) == "DEQUANTIZE" and len(consumers(g, w_in)) == 1:
                    src = p.inputs[0]
                    if same_quantization(g.tensors[src].quantization, params):
                        loop.inputs[k] = src
                        g.operators.remove(p)
                    else:
                        make_quantize(p)
                        g.tensors[w_in].type = int_type
                        g.tensors[w_in].quantization = copy.deepcopy(params)
                else:
                    t = copy.deepcopy(g.tensors[w_in])
                    t.type, t.quantization, t.buffer = int_type, copy.deepcopy(params), 0
                    t.name = (t.name or b"") + b"_int8"
                    g.tensors.append(t)
                    new_op = schema.OperatorT()
                    new_op.inputs, new_op.outputs = [w_in], [len(g.tensors) - 1]
                    make_quantize(new_op)
                    g.operators.insert(g.operators.index(loop), new_op)
                    loop.inputs[k] = len(g.tensors) - 1
                # 5. the WHILE output
                w_out = loop.outputs[k]
                g.tensors[w_out].type = int_type
                g.tensors[w_out].quantization = copy.deepcopy(params)
                for user in consumers(g, w_out):
                    if op_name(user) != "QUANTIZE":
                        fail(f"WHILE output {k} is read by {op_name(user)}")
                    u_out = user.outputs[0]
                    if same_quantization(g.tensors[u_out].quantization, params):
                        for op in g.operators:
                            op.inputs = [w_out if i == u_out else i for i in op.inputs]
                        g.outputs = [w_out if i == u_out else i for i in g.outputs]
                        g.operators.remove(user)
                if w_out in list(g.outputs):
                    fail("a float WHILE output is a graph output")
                changed += 1
    return changed


