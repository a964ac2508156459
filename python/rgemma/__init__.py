"""rgemma: RecurrentGemma (Griffin) inference on the CPU.

A model directory as downloaded from Hugging Face (config.json, safetensors,
tokenizer.model) runs as it is::

    import rgemma
    m = rgemma.Model("recurrentgemma-2b-it")
    print(m.generate("The capital of France is", max_tokens=16, temperature=0))

RecurrentGemma's state has a constant size, whatever the length of the
sequence: keep a conversation in a :class:`State`, copy it, save it, and
continue it later without running the history again::

    s = m.new_state()
    m.generate("Once upon a time", max_tokens=32, state=s)   # s now holds prompt + reply
    s.save("story.rgstate")
    s2 = rgemma.State.load("story.rgstate", m)
    m.generate(" And then", max_tokens=32, state=s2)          # continues after the saved reply

Every call that computes releases the GIL; Ctrl-C interrupts a generation.
Errors are :class:`RgemmaError` (a ValueError) with a one-line message.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np

from . import _rgemma
from ._rgemma import RgemmaError, __version__

__all__ = ["Model", "State", "RgemmaError", "__version__"]

# The CLI's sampling defaults (src/sampling/sampling_params.h), so a seed
# gives the same tokens here as in `rgemma generate`.
_TEMPERATURE, _TOP_K, _TOP_P, _MIN_P = 0.8, 40, 0.95, 0.05


class State:
    """One sequence of a model: its recurrent state, KV window and the logits
    after its last token. Constant size (a few MB for 2B) at any length."""

    def __init__(self, model: "Model", _native: Optional[Any] = None):
        self._model = model
        self._s = _native if _native is not None else _rgemma.State(model._m)

    @property
    def pos(self) -> int:
        """Tokens in the sequence."""
        return self._s.pos

    @property
    def model(self) -> "Model":
        return self._model

    def copy(self) -> "State":
        """An independent copy (both can be continued differently)."""
        return State(self._model, self._s.copy())

    def logits(self) -> Optional[np.ndarray]:
        """The logits after the last token, float32 [vocab], or None before any."""
        return self._s.logits()

    def eval(self, ids: Iterable[int]) -> None:
        """Feeds token ids into the state."""
        self._s.eval(list(ids))

    def score(self, ids: Iterable[int]) -> List[float]:
        """log p(ids[i] | state, ids[:i]) for each i (NaN for ids[0] of an empty
        state); the state then holds ids."""
        return self._s.score(list(ids))

    def to_bytes(self) -> bytes:
        """The versioned state file format (what save() writes)."""
        return self._s.to_bytes()

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the state atomically (a temporary file, then rename)."""
        self._s.save(os.fspath(path))

    @staticmethod
    def load(path: Union[str, os.PathLike], model: "Model") -> "State":
        """Reads a state saved for `model` (checked: model, size, checksum)."""
        return State(model, _rgemma.State.load(model._m, os.fspath(path)))

    @staticmethod
    def from_bytes(data: bytes, model: "Model") -> "State":
        return State(model, _rgemma.State.from_bytes(model._m, data))

    def __repr__(self) -> str:
        return f"rgemma.State(pos={self.pos})"


class Model:
    """A model directory (Hugging Face layout, or one written by `rgemma
    quantize`), loaded with its generation engine."""

    def __init__(self, path: Union[str, os.PathLike], threads: Optional[int] = None, weights: Optional[str] = None,
                 mmap: bool = False, tokenizer: Optional[str] = None, parallel: int = 4):
        """threads: compute threads (default: all cores); weights: None (as
        stored), "bf16", "q8" or "q4" (converted at load); mmap: use the
        weights in place from the file (instant start, slower decode);
        parallel: sequences run together when called from several threads."""
        if threads is not None and threads <= 0:
            raise RgemmaError(f"threads must be positive, got {threads}")
        self._m = _rgemma.Model(os.fspath(path), threads or 0, weights or "", mmap, tokenizer or "", parallel)

    # ---- properties
    @property
    def path(self) -> str:
        return self._m.path

    @property
    def vocab_size(self) -> int:
        return self._m.vocab_size

    @property
    def bos_id(self) -> int:
        return self._m.bos_id

    @property
    def eos_id(self) -> int:
        return self._m.eos_id

    @property
    def has_tokenizer(self) -> bool:
        return self._m.has_tokenizer

    # ---- text
    def tokenize(self, text: str, bos: bool = True) -> List[int]:
        """Token ids of `text` (BOS first unless bos=False)."""
        return self._m.tokenize(text, bos)

    def detokenize(self, ids: Iterable[int]) -> str:
        return self._m.detokenize(list(ids))

    # ---- states
    def new_state(self) -> State:
        """An empty sequence."""
        return State(self)

    # ---- computation
    def forward(self, ids: Sequence[int]) -> np.ndarray:
        """The logits of every position of `ids` from an empty state, float32 [T, vocab]."""
        return self._m.forward(list(ids))

    def generate_tokens(self, ids: Sequence[int], max_tokens: int, temperature: float = _TEMPERATURE,
                        top_k: int = _TOP_K, top_p: float = _TOP_P, min_p: float = _MIN_P, seed: int = 0,
                        ignore_eos: bool = False, state: Optional[State] = None) -> List[int]:
        """The generated ids after the prompt `ids` (works without a tokenizer)."""
        out, _, _ = self._m._generate(self._native_state(state), list(ids), max_tokens, ignore_eos, [], [],
                                      temperature, top_k, top_p, min_p, 1.0, 64, 0.0, 0.0, seed)
        return out

    def generate(self, prompt: Union[str, Sequence[int]], max_tokens: int = 128, temperature: float = _TEMPERATURE,
                 top_k: int = _TOP_K, top_p: float = _TOP_P, min_p: float = _MIN_P, repeat_penalty: float = 1.0,
                 repeat_last_n: int = 64, presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
                 seed: int = 0, stop: Optional[Union[str, List[str]]] = None, ignore_eos: bool = False,
                 stream: bool = False, state: Optional[State] = None) -> Union[str, Iterator[str]]:
        """Text after `prompt` (text gets BOS when the state is empty; ids are
        used as given). stream=True returns an iterator of text pieces, each
        valid UTF-8. With `state`, the prompt continues it and the state then
        holds the reply too (prompt may be "" to continue from the state)."""
        if isinstance(prompt, str):
            ids = self.tokenize(prompt, bos=state is None or state.pos == 0) if prompt else []
        else:
            ids = list(prompt)
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        args = (max_tokens, ignore_eos, [], stops, temperature, top_k, top_p, min_p, repeat_penalty, repeat_last_n,
                presence_penalty, frequency_penalty, seed)
        if stream:
            return iter(self._m._generate_stream(self._native_state(state), ids, *args))
        _, text, _ = self._m._generate(self._native_state(state), ids, *args)
        return text

    # ---- OpenAI-shaped (as llama-cpp-python): the same JSON `rgemma serve` answers with
    def create_completion(self, prompt: Union[str, List[int], List[str]], stream: bool = False,
                          **kwargs: Any) -> Union[Dict[str, Any], Iterator[Dict[str, Any]]]:
        """A text_completion dict (OpenAI /v1/completions fields: max_tokens,
        temperature, top_p, n, stop, logprobs, echo, seed, ...); stream=True
        yields the chunks."""
        return self._openai("completions", {"prompt": prompt, "stream": stream, **kwargs}, stream)

    def create_chat_completion(self, messages: List[Dict[str, Any]], stream: bool = False,
                               **kwargs: Any) -> Union[Dict[str, Any], Iterator[Dict[str, Any]]]:
        """A chat.completion dict (Gemma chat template; OpenAI
        /v1/chat/completions fields); stream=True yields the chunks."""
        return self._openai("chat", {"messages": messages, "stream": stream, **kwargs}, stream)

    def _openai(self, endpoint: str, body: Dict[str, Any], stream: bool):
        body = {k: v for k, v in body.items() if v is not None}
        text = json.dumps(body)
        if stream:
            return (json.loads(ev) for ev in self._m._openai_stream(endpoint, text))
        return json.loads(self._m._openai(endpoint, text))

    def _native_state(self, state: Optional[State]):
        if state is None:
            return None
        if state.model is not self:
            raise RgemmaError("the state belongs to another model")
        return state._s

    def __repr__(self) -> str:
        return f"rgemma.Model({self.path!r})"
