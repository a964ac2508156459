"""The Python package `rgemma` (pytest; run by tests/python/run.sh with the
package built in BUILD/python): reference fixtures through forward and
greedy generation, sampling equal to the CLI's, states saved in one process
and continued in another, errors, streaming text, OpenAI-shaped dicts, no
memory growth over many calls, Ctrl-C."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unicodedata

import numpy as np
import pytest

import rgemma

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "data", "fixtures")
BIN = os.environ.get("RGEMMA_BIN", os.path.join(ROOT, "build", "rgemma"))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import st  # noqa: E402  (the minimal safetensors reader)


def fixture_dirs():
    return sorted(os.path.join(FIXTURES, d) for d in os.listdir(FIXTURES)
                  if os.path.exists(os.path.join(FIXTURES, d, "expected.safetensors")))


def cases(d):
    exp = st.read(os.path.join(d, "expected.safetensors"))
    for k in sorted(exp):
        m = re.fullmatch(r"tokens\.(\d+)", k)
        if m:
            i = m.group(1)
            yield i, exp[k].tolist(), exp[f"logits.{i}"], exp.get(f"gen_prompt.{i}"), exp.get(f"gen_tokens.{i}")


@pytest.fixture(scope="session")
def text_model(tmp_path_factory):
    """A small random model with the real Gemma tokenizer (as the server tests use)."""
    d = str(tmp_path_factory.mktemp("text") / "model")
    subprocess.run([BIN, "init", "--preset", "2b", "--hidden-size", "64", "--num-heads", "2", "--num-layers", "3",
                    "--window", "16", "--dtype", "bf16", "--seed", "3", "--tokenizer",
                    os.path.join(ROOT, "models", "tokenizer", "tokenizer.model"), "--out", d],
                   check=True, capture_output=True)
    return rgemma.Model(d, threads=2)


@pytest.mark.parametrize("d", fixture_dirs(), ids=os.path.basename)
def test_forward_matches_the_reference_logits(d):
    m = rgemma.Model(d)
    for i, toks, logits, _, _ in cases(d):
        got = m.forward(toks)
        assert got.shape == logits.shape and got.dtype == np.float32
        assert np.max(np.abs(got - logits)) < 1e-3, f"case {i}"


@pytest.mark.parametrize("d", fixture_dirs(), ids=os.path.basename)
def test_greedy_generation_matches_the_reference_tokens(d):
    m = rgemma.Model(d)
    n = 0
    for i, _, _, prompt, want in cases(d):
        if prompt is None:
            continue
        got = m.generate_tokens(prompt.tolist(), len(want), temperature=0, ignore_eos=True)
        assert got == want.tolist(), f"case {i}"
        n += 1
    assert n > 0


def test_sampling_with_a_seed_is_reproducible_and_equals_the_cli():
    d = os.path.join(FIXTURES, "small")
    m = rgemma.Model(d)
    prompt = [2, 17, 33, 4, 99]
    a = m.generate_tokens(prompt, 12, seed=7, ignore_eos=True)
    assert a == m.generate_tokens(prompt, 12, seed=7, ignore_eos=True)
    assert a != m.generate_tokens(prompt, 12, seed=8, ignore_eos=True)
    cli = subprocess.run([BIN, "generate", "-m", d, "--prompt-ids", ",".join(map(str, prompt)), "-n", "12",
                          "--seed", "7", "--ignore-eos", "--print-ids"], check=True, capture_output=True, text=True)
    assert a == [int(x) for x in cli.stdout.split()]


def test_a_state_saved_after_a_prefix_continues_identically_in_a_new_process(tmp_path):
    d = os.path.join(FIXTURES, "small")
    m = rgemma.Model(d)
    prefix, rest = [2, 17, 33, 4, 99, 5, 6], [40, 41, 42]
    s = m.new_state()
    s.eval(prefix)
    path = tmp_path / "prefix.rgstate"
    s.save(path)
    assert s.to_bytes() == path.read_bytes()
    here = m.generate_tokens(rest, 8, temperature=0, ignore_eos=True, state=s.copy())
    assert here == m.generate_tokens(prefix + rest, 8, temperature=0, ignore_eos=True)
    code = textwrap.dedent(f"""
        import rgemma
        m = rgemma.Model({d!r})
        s = rgemma.State.load({str(path)!r}, m)
        assert s.pos == {len(prefix)}
        print(m.generate_tokens({rest!r}, 8, temperature=0, ignore_eos=True, state=s))
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert json.loads(out.stdout) == here
    # Continuing an empty prompt from the state's own logits.
    # An empty prompt continues from the state's own logits (saved with it).
    s2 = rgemma.State.from_bytes(path.read_bytes(), m)
    assert s2.logits() is not None and s2.logits().shape == (m.vocab_size,)
    assert m.generate_tokens([], 4, temperature=0, ignore_eos=True, state=s2) == \
        m.generate_tokens(prefix, 4, temperature=0, ignore_eos=True)


def test_score_is_the_log_softmax_of_the_reference_logits():
    d = os.path.join(FIXTURES, "tiny")
    m = rgemma.Model(d)
    for i, toks, logits, _, _ in cases(d):
        s = m.new_state()
        lp = s.score(toks)
        assert np.isnan(lp[0])
        for t in range(1, len(toks)):
            row = logits[t - 1].astype(np.float64)
            want = row[toks[t]] - (np.log(np.sum(np.exp(row - row.max()))) + row.max())
            assert abs(lp[t] - want) < 1e-3, f"case {i} token {t}"


def test_bad_paths_ids_and_parameters_raise_clear_errors(tmp_path):
    d = os.path.join(FIXTURES, "tiny")
    with pytest.raises(rgemma.RgemmaError, match="config.json"):
        rgemma.Model(tmp_path / "nothing")
    m = rgemma.Model(d)
    with pytest.raises(rgemma.RgemmaError, match=r"token id 512 .* outside the model's vocabulary \[0, 512\)"):
        m.generate_tokens([2, 512], 3)
    with pytest.raises(rgemma.RgemmaError, match="temperature"):
        m.generate_tokens([2], 3, temperature=-1)
    with pytest.raises(rgemma.RgemmaError, match="top_p"):
        m.generate_tokens([2], 3, top_p=2)
    with pytest.raises(rgemma.RgemmaError, match="no tokenizer"):
        m.tokenize("text")
    with pytest.raises(rgemma.RgemmaError, match="nothing to continue from"):
        m.generate_tokens([], 3)
    with pytest.raises(rgemma.RgemmaError, match="token ids"):
        m.forward(["a"])
    with pytest.raises(rgemma.RgemmaError, match="max_tokens"):
        m.create_completion([2], max_tokens=-1)
    bad = tmp_path / "bad.rgstate"
    bad.write_bytes(b"not a state")
    with pytest.raises(rgemma.RgemmaError, match="not an rgemma state file"):
        rgemma.State.load(bad, m)
    other = rgemma.Model(os.path.join(FIXTURES, "small"))
    s = other.new_state()
    s.eval([2, 3])
    s.save(tmp_path / "other.rgstate")
    with pytest.raises(rgemma.RgemmaError, match="different model"):
        rgemma.State.load(tmp_path / "other.rgstate", m)
    with pytest.raises(rgemma.RgemmaError, match="another model"):
        m.generate_tokens([2], 2, state=s)
    with pytest.raises(rgemma.RgemmaError, match="threads"):
        rgemma.Model(d, threads=-1)


def test_streaming_yields_valid_utf8_pieces_that_make_the_text(text_model):
    m = text_model
    whole = m.generate("Grüße aus Köln — 東京 🌊", max_tokens=40, temperature=1.0, seed=3, ignore_eos=True)
    pieces = list(m.generate("Grüße aus Köln — 東京 🌊", max_tokens=40, temperature=1.0, seed=3, ignore_eos=True,
                             stream=True))
    assert all(isinstance(p, str) and p for p in pieces)
    for p in pieces:
        p.encode("utf-8")  # a str is valid UTF-8 once encoded: no lone surrogates
        assert not any(unicodedata.category(ch) == "Cs" for ch in p)
    assert "".join(pieces) == whole


def test_stop_strings_and_state_continuation(text_model):
    m = text_model
    full = m.generate("Hello", max_tokens=20, temperature=0, ignore_eos=True)
    if len(full) > 6:
        cut = full[3:6]
        got = m.generate("Hello", max_tokens=20, temperature=0, ignore_eos=True, stop=cut)
        assert got == full[: full.index(cut)]
    # Generation continued in two calls on one state equals one call.
    ids = m.tokenize("Hello")
    s = m.new_state()
    a = m.generate_tokens(ids, 5, temperature=0, ignore_eos=True, state=s)
    b = m.generate_tokens([], 5, temperature=0, ignore_eos=True, state=s)
    assert s.pos == len(ids) + 10
    assert a + b == m.generate_tokens(ids, 10, temperature=0, ignore_eos=True)


def test_openai_shaped_completions_and_chat(text_model):
    m = text_model
    r = m.create_completion("The sea", max_tokens=5, temperature=0, logprobs=2, echo=True)
    assert r["object"] == "text_completion" and r["choices"][0]["text"].startswith("The sea")
    lp = r["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == len(m.tokenize("The sea")) + 5 and lp["token_logprobs"][0] is None
    assert r["usage"]["completion_tokens"] == 5
    c = m.create_chat_completion([{"role": "user", "content": "Hi!"}], max_tokens=6, temperature=0, logprobs=True,
                                 top_logprobs=2)
    assert c["object"] == "chat.completion" and c["choices"][0]["message"]["role"] == "assistant"
    assert c["choices"][0]["logprobs"]["content"]
    chunks = list(m.create_chat_completion([{"role": "user", "content": "Hi!"}], max_tokens=6, temperature=0,
                                           stream=True))
    assert chunks[0]["object"] == "chat.completion.chunk"
    assert "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks if ch["choices"]) == \
        c["choices"][0]["message"]["content"]
    with pytest.raises(rgemma.RgemmaError, match="temperature"):
        m.create_chat_completion([{"role": "user", "content": "Hi!"}], temperature=5)


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_a_thousand_calls_do_not_grow_memory():
    m = rgemma.Model(os.path.join(FIXTURES, "tiny"), threads=1)
    for _ in range(50):  # warm up the allocators
        m.generate_tokens([2, 17, 33], 4, seed=1, ignore_eos=True)
        m.forward([2, 17])
    before = rss_kb()
    for i in range(1000):
        m.generate_tokens([2, 17, 33], 4, seed=i, ignore_eos=True)
        if i % 10 == 0:
            m.forward([2, 17, 33])
            m.new_state().to_bytes()
    growth = rss_kb() - before
    assert growth < 4096, f"RSS grew by {growth} KiB over 1000 calls"


def test_ctrl_c_interrupts_a_generation(tmp_path):
    d = os.path.join(FIXTURES, "small")
    # The child installs Python's own SIGINT handler: a process started with
    # SIGINT ignored (e.g. by a non-interactive shell's `&`, as a CI runner
    # may be) passes that on, and Python then raises no KeyboardInterrupt.
    code = textwrap.dedent(f"""
        import signal, sys, time, rgemma
        signal.signal(signal.SIGINT, signal.default_int_handler)
        m = rgemma.Model({d!r}, threads=1)
        print("ready", flush=True)
        t0 = time.time()
        try:
            m.generate_tokens([2, 17], 10**7, ignore_eos=True)
        except KeyboardInterrupt:
            print("interrupted after %.1f s" % (time.time() - t0), flush=True)
            sys.exit(0)
        sys.exit(1)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    try:
        out, _ = p.communicate(timeout=30)
    except subprocess.TimeoutExpired as e:
        # Keep what the child printed and where each of its threads was.
        stacks = ""
        if shutil.which("gdb"):
            stacks = subprocess.run(["gdb", "-p", str(p.pid), "-batch", "-ex", "thread apply all bt"],
                                    capture_output=True, text=True, timeout=60).stdout
        p.kill()
        p.communicate()
        pytest.fail(f"no exit 30 s after SIGINT; stdout so far: {e.output!r}\nthreads:\n{stacks}")
    assert p.returncode == 0 and out.startswith("interrupted"), out
