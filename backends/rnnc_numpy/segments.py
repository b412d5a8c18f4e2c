"""Checkpointed loops (``unroll.checkpoint``), printed as the plan's ``Checkpoint`` says.

The forward loop runs in segments of k steps and keeps its states at the start of each
(``kept_<layer>_<state>``, [segments, batch, n]); the backward loop runs the segments in
reverse, each after the forward steps of that segment run again from the kept states
into buffers k steps long. What the plan moved into the segments (hoisted input
products before, batched weight gradients after, summed over the segments) is printed
there, on the segment's slice ``[:, start:stop]`` of the sequences kept whole. A value
k steps long is read at ``t - start``; the loops' ``t`` is the step itself, as elsewhere.
"""

from __future__ import annotations

from rnncompiler.ir.ops import OP

from .lowering import ATOM, LOWERINGS


def emit_checkpointed(writer, loop) -> None:
    cp = loop.checkpoint
    if loop is cp.forward:
        _emit_forward(writer, cp)
    else:
        _emit_backward(writer, cp)


class _Segments:
    """The names a checkpointed pair of loops shares: k, the count, the kept states."""

    def __init__(self, writer, cp):
        self.every = writer.names.take(f"{cp.forward.block.name}_every")
        self.count = writer.names.take(f"{cp.forward.block.name}_segments")
        self.kept: dict = {}
        self.steps = writer.steps_of(cp.forward.block)


def _emit_forward(w, cp) -> None:
    loop, block = cp.forward, cp.forward.block
    seg = w.segments[id(cp)] = _Segments(w, cp)
    w.emit()
    every = "⌈√T⌉" if cp.every == "auto" else cp.every
    w.emit(f"# {w.describe(loop)},")
    w.emit(f"# in segments of {every} steps (checkpointed): only the states at the start of")
    w.emit("# each are kept; the backward pass runs each segment's steps again")
    place_var = {place: w.names.take(f"{block.name}_{place}")
                 for place in sorted(loop.carried.keys() | loop.finals | loop.saved)}
    buffers = {stack: w.names.take(w.output_name(stack) or block.name)
               for stack in loop.collected if stack not in cp.recollected}
    for place, start in loop.carried.items():
        w.emit(f"{place_var[place]} = {w.expr(start)[0]}")
    every = (f"int(np.ceil(np.sqrt({seg.steps})))" if cp.every == "auto" else str(cp.every))
    w.emit(f"{seg.every} = {every}")
    w.emit(f"{seg.count} = -(-{seg.steps} // {seg.every})")
    for place in loop.carries:
        seg.kept[place] = name = w.names.take(f"kept_{block.name}_{place}")
        w.emit(f"{name} = np.empty(({seg.count}, *{place_var[place]}.shape), dtype=DTYPE)")
    _allocate(w, [(buffers[s], loop.template[loop.collected[s]], s in w.returned)
                  for s in buffers], seg.steps)
    w.emit(f"for {w.segment} in range({seg.count}):")
    w.indent += 1
    _bounds(w, cp, seg)
    for place in loop.carries:
        w.emit(f"{seg.kept[place]}[{w.segment}] = {place_var[place]}")
    _emit_before(w, cp)
    _emit_steps(w, loop, place_var, [(buffers[s], place) for s, place in loop.collected.items()
                                     if s in buffers])
    w.indent -= 1
    for place in loop.finals:
        w.var[loop.iterations[-1][place]] = place_var[place]
    for stack, buffer in buffers.items():
        w.var[stack] = buffer
    for node in cp.before:  # k steps long: what runs again reads them afresh
        w.var.pop(node, None)


def _bounds(w, cp, seg) -> None:
    """``start``, ``stop``: the steps of the segment, counted in the forward loop's order."""
    if cp.forward.block.backward:
        w.emit(f"{w.stop} = {seg.steps} - {w.segment} * {seg.every}")
        w.emit(f"{w.start} = max({w.stop} - {seg.every}, 0)")
    else:
        w.emit(f"{w.start} = {w.segment} * {seg.every}")
        w.emit(f"{w.stop} = min({w.start} + {seg.every}, {seg.steps})")


def _allocate(w, wanted: list, length: str) -> None:
    """Arrays filled a step at a time: (name, a node of the place, returned)."""
    for name, node, returned in wanted:
        w.emit_buffer(name, ("batch", length, *w.graph[node].shape), returned)


def _segment_views(w, cp, nodes) -> dict:
    """The segment's slice of every whole sequence ``nodes`` read, as a variable of its
    own; returns the variables they replace, to restore."""
    replaced, steps = {}, (cp.forward.block.steps,)
    for node in nodes:
        for arg in w.graph.args(node):
            data = w.graph[arg]
            if arg in replaced or arg in w.local_nodes or not data.batched \
                    or data.shape[:1] != steps or arg not in w.var:
                continue
            replaced[arg] = whole = w.var[arg]
            w.var[arg] = name = w.names.take(f"{whole}_segment")
            w.emit(f"{name} = {whole}[:, {w.start}:{w.stop}]")
    return replaced


def _emit_before(w, cp) -> None:
    """The products over whole sequences that only the forward loop reads, over the
    segment: read at ``t - start``."""
    if not cp.before:
        return
    replaced = _segment_views(w, cp, cp.before)
    for node in cp.before:
        w.var.pop(node, None)
        if w.materialized(node):
            w.emit_assignment(node, w.outside_name(node))
            w.local_steps[w.var[node]] = f"t - {w.start}"
    w.var.update(replaced)


def _emit_steps(w, loop, place_var: dict, stores: list, saved_in: list = ()) -> None:
    """``for t`` over the segment, in the loop's direction: the body, then the stores."""
    order = "reversed(range({}, {}))" if loop.block.backward else "range({}, {})"
    w.emit(f"for t in {order.format(w.start, w.stop)}:")
    w.indent += 1
    for buffer, place in saved_in:
        w.emit(f"{buffer}[:, {w.step_of(buffer)}] = {place_var[place]}")
    w.names.open_scope()
    outside = w.context
    w.context = w.new_context("t")
    w.emit_body(loop, place_var)
    for buffer, place in stores:
        w.emit(f"{buffer}[:, {w.step_of(buffer)}] = {w.loop_value(loop, place, place_var)}")
    w.names.close_scope()
    w.context = outside
    w.indent -= 1


def _emit_backward(w, cp) -> None:
    seg, loop = w.segments[id(cp)], cp.backward
    block, length = loop.block, f"{w.stop} - {w.start}"
    w.emit()
    w.emit(f"# {w.describe(loop)},")
    w.emit("# a segment at a time: its forward steps run again from the states kept at its")
    w.emit("# start, into buffers a segment long; the weight gradients summed over segments")
    prefix = block.gradient_of or block.name
    place_var = {place: w.names.take(f"{prefix}_{place}")
                 for place in sorted(loop.carried.keys() | loop.finals)}
    buffers = {stack: w.names.take(w.output_name(stack) or block.name)
               for stack in loop.collected}
    for place, start in loop.carried.items():
        w.emit(f"{place_var[place]} = {w.expr(start)[0]}")
    _allocate(w, [(buffers[s], loop.template[loop.collected[s]], s in w.returned)
                  for s in buffers if s not in cp.local], seg.steps)
    saved, saved_in = _saved_whole(w, loop, seg.steps)
    sums = [node for node in cp.after if node not in cp.shifts]
    totals = {node: w.names.take(w.outside_name(node)) for node in sums}
    for node, name in totals.items():
        w.emit(f"{name} = np.zeros({tuple(w.graph[node].shape)!r}, dtype=DTYPE)")
    w.emit(f"for {w.segment} in reversed(range({seg.count})):")
    w.indent += 1
    _bounds(w, cp, seg)
    again = _emit_forward_again(w, cp, seg, length)
    # (in the loop's order: in a set's, the module would differ from one compile to the next)
    local = [stack for stack in loop.collected if stack in cp.local]
    _allocate(w, [(buffers[s], loop.template[loop.collected[s]], False) for s in local],
              length)
    for stack in local:
        w.local_steps[buffers[stack]] = f"t - {w.start}"
    _emit_steps(w, loop, place_var, [(buffers[s], place) for s, place in loop.collected.items()]
                + saved, saved_in)
    for stack, buffer in buffers.items():
        w.var[stack] = buffer
    w.local_nodes = set(cp.local) | set(again)
    _emit_after(w, cp, seg, totals)
    w.indent -= 1
    w.local_nodes = set()
    for node in [*cp.shifts, *cp.local, *again]:
        w.var.pop(node, None)
    for node, name in totals.items():
        w.var[node] = name
    for place in loop.finals:
        w.var[loop.iterations[-1][place]] = place_var[place]


def _saved_whole(w, loop, steps: str) -> tuple[list, list]:
    """The values of the backward loop that another loop reads a step at a time (the
    gradient a layer hands the one below it, where nothing collects it), every step of
    them, as the loop would save them unsegmented: (stores after the body, stores of
    carried values as they enter a step)."""
    wanted, stores, entering = [], [], []
    for kind, _, place in loop.per_step:
        if kind == "collected":
            continue
        name = w.names.take(f"saved_{loop.block.name}_{place}" + ("_in" if kind == "in" else ""))
        w.saved[(loop.block.name, place, kind)] = name
        values = {iteration[place] for iteration in loop.iterations}
        wanted.append((name, loop.template[place], bool(values & w.returned)))
        (entering if kind == "in" else stores).append((name, place))
    _allocate(w, wanted, steps)
    return stores, entering


def _emit_after(w, cp, seg, totals: dict) -> None:
    """The segment's share of each sum over steps (a batched weight gradient), added to
    its total."""
    replaced = _segment_views(w, cp, cp.after)
    for node in cp.shifts:
        _emit_shift(w, cp, seg, node)
    for node, total in totals.items():
        w.emit(f"{total} += {w.expr(node)[0]}")
    w.var.update(replaced)


def _emit_forward_again(w, cp, seg, length: str) -> list:
    """The forward loop's steps of the segment, from its kept states, saving what the
    backward loop reads into buffers k steps long; returns the sequences it remade."""
    loop, block = cp.forward, cp.forward.block
    place_var = {place: w.names.take(f"{block.name}_{place}")
                 for place in sorted(loop.carried.keys() | loop.saved)}
    for place in loop.carries:
        w.emit(f"{place_var[place]} = {seg.kept[place]}[{w.segment}]")
    _emit_before(w, cp)
    wanted, stores, saved_in = [], [], []
    for kind, stack, place in loop.per_step:
        if kind == "collected" and stack not in cp.recollected:
            continue
        name = w.names.take(f"{block.name}_{place}" if kind == "collected" else
                            f"saved_{block.name}_{place}" + ("_in" if kind == "in" else ""))
        if kind == "collected":
            w.var[stack] = name
        else:
            w.saved[(block.name, place, kind)] = name
        w.local_steps[name] = f"t - {w.start}"
        wanted.append((name, loop.template[place], False))
        (saved_in if kind == "in" else stores).append((name, place))
    _allocate(w, wanted, length)
    _emit_steps(w, loop, place_var, stores, saved_in)
    return [stack for stack in loop.collected if stack in cp.recollected]


def _emit_shift(w, cp, seg, node: int) -> None:
    """What a state held entering each step of the segment: its kept value at the
    segment's start, then the segment's own values one step later."""
    stack, _ = w.graph.args(node)
    first = f"{seg.kept[cp.forward.collected[stack]]}[{w.segment}]"
    text, _ = LOWERINGS[OP.shift_steps]([(w.var[stack], ATOM), (first, ATOM)],
                                         w.graph[node].attrs, w.context)
    w.var[node] = name = w.names.take(w.outside_name(node))
    w.emit(f"{name} = {text}")
