"""Random sequences of log / fork / rewind / resume give the same effective histories in
runlake and in the reference model (tests/model.py)."""

from __future__ import annotations

import math
import uuid
import warnings

import pytest
from conftest import effective
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model import ForkPoint, ModelLake, StepOrder

import runlake

KEYS = ["a", "b", "c/d"]

values = st.one_of(
    st.floats(allow_nan=False, width=64),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from([math.inf, -math.inf, None]),
)
log_op = st.tuples(
    st.just("log"),
    st.integers(0, 7),  # which run
    st.dictionaries(st.sampled_from(KEYS), values, max_size=3),
    st.one_of(st.none(), st.integers(0, 40)),  # step (relative to the current one, see below)
    st.sampled_from([None, True, False]),
)
text_op = st.tuples(st.just("text"), st.integers(0, 7), st.text(max_size=5))
fork_op = st.tuples(st.just("fork"), st.integers(0, 7), st.integers(-2, 30))
rewind_op = st.tuples(st.just("rewind"), st.integers(0, 7), st.integers(-2, 30))
resume_op = st.tuples(st.just("resume"), st.integers(0, 7))
finish_op = st.tuples(st.just("finish"), st.integers(0, 7))
compact_op = st.tuples(st.just("compact"), st.integers(0, 7))  # packs what is finished so far
ops = st.lists(
    st.one_of(log_op, log_op, log_op, text_op, fork_op, rewind_op, resume_op, finish_op, compact_op),
    min_size=1,
    max_size=40,
)


def _pick(ids: list[str], index: int) -> str:
    return ids[index % len(ids)]


def run_program(root: str, program: list[tuple]) -> None:
    model = ModelLake()
    first = runlake.init("prop", root=root)
    live = {first.id: first}
    model.create(first.id)
    ids = [first.id]
    for op in program:
        kind, index = op[0], op[1]
        run_id = _pick(ids, index)
        real, mrun = live.get(run_id), model.runs[run_id]
        if kind in ("log", "text"):
            if real is None:
                continue
            if kind == "text":
                data, step, commit = {"t": op[2]}, None, None
            else:
                _, _, data, rel, commit = op
                # mostly at or above the current step; sometimes below (dropped with a warning)
                step = None if rel is None else max(0, mrun.step + rel - 8)
            data = {k: (float(v) if isinstance(v, int) else v) for k, v in data.items()}
            try:
                mrun.log(data, step=step, commit=commit)
                expect_drop = False
            except StepOrder:
                expect_drop = True
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                real.log(data, step=step, commit=commit)
            dropped = [w for w in caught if issubclass(w.category, runlake.StepOrderWarning)]
            assert bool(dropped) == expect_drop
            assert real.step == mrun.step
        elif kind == "finish":
            if real is not None:
                real.finish()
                mrun.finish()
                del live[run_id]
        elif kind in ("fork", "rewind"):
            step = op[2] + (model.last_step(run_id) or 0) - 20 if op[2] >= 0 else op[2]
            if step < 0:
                with pytest.raises(ValueError):
                    runlake.init("prop", root=root, fork_from=f"{run_id}?_step={step}")
                continue
            if kind == "rewind" and real is not None:
                with pytest.raises(runlake.RunlakeError, match="finish"):
                    runlake.init(root=root, resume_from=f"{run_id}?_step={step}")
                continue
            try:
                if kind == "fork":
                    new_id = uuid.uuid4().hex[:8]
                    model.fork(run_id, step, new_id)
                else:
                    model.rewind(run_id, step)
            except ForkPoint:
                with pytest.raises(runlake.ForkPointError):
                    if kind == "fork":
                        runlake.init("prop", root=root, fork_from=f"{run_id}?_step={step}")
                    else:
                        runlake.init(root=root, resume_from=f"{run_id}?_step={step}")
                continue
            if kind == "fork":
                new = runlake.init("prop", root=root, id=new_id, fork_from=f"{run_id}?_step={step}")
                live[new.id] = new
                ids.append(new.id)
                assert new.step == step + 1
            else:
                live[run_id] = runlake.init(root=root, resume_from=f"{run_id}?_step={step}")
                assert live[run_id].step == mrun.step
        elif kind == "compact":
            runlake.compact(root, progress=False)
        elif kind == "resume":
            if real is not None:
                continue
            model.resume(run_id)
            live[run_id] = runlake.init(root=root, id=run_id, resume="must")
            assert live[run_id].step == mrun.step

    for run in list(live.values()):
        run.finish()
    for mrun in model.runs.values():
        mrun.finish()
    check_against_model(root, model)
    physical = "SELECT run_id, segment, step, key, value, text FROM raw_history ORDER BY ALL"
    before = runlake.sql(physical, root=root)
    runlake.compact(root, progress=False)  # every run finished: all of it goes into packs
    check_against_model(root, model)
    assert runlake.sql(physical, root=root).equals(before)  # every physical row once, archives too


def check_against_model(root: str, model: ModelLake) -> None:
    table = runlake.runs(root=root)
    assert sorted(table["run_id"].to_list()) == sorted(model.runs)
    last = dict(zip(table["run_id"].to_list(), table["last_step"].to_list(), strict=True))
    for run_id, mrun in model.runs.items():
        for segment in range(len(mrun.nodes)):
            got = effective(runlake.history(run_id, root=root, segment=segment))
            want = model.effective(run_id, segment)
            assert got == want, (run_id, segment)
            # selected keys: the steps where any of them was logged (OR), only their columns
            for keys in (["a"], ["c/d", "t"], ["t", "a", "nope"]):
                picked = runlake.history(run_id, keys, root=root, segment=segment)
                assert picked.columns == ["_step", "_timestamp", "_runtime", *keys]
                got_keys = effective(picked)
                want_keys = {
                    step: {k: v for k, v in row.items() if k in keys}
                    for step, row in want.items()
                    if any(k in row for k in keys)
                }
                assert got_keys == want_keys, (run_id, segment, keys)
        assert last[run_id] == model.last_step(run_id), run_id


@pytest.mark.memory
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=ops)
def test_random_programs_match_the_model_on_memory(program):
    run_program(f"memory://runlake-prop/{uuid.uuid4().hex}", program)


@pytest.mark.slow  # 40 programs of whole runs on disk: the memory:// twin runs 120 in `make test`
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=ops)
def test_random_programs_match_the_model_on_disk(tmp_path_factory, program):
    run_program(str(tmp_path_factory.mktemp("prop") / "lake"), program)
