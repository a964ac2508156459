#!/usr/bin/env python3
"""Compare two `rgemma forward` outputs: top-1 agreement and mean KL(ref || test) per token.

    compare_logits.py REF.safetensors TEST.safetensors
Prints: top1=<fraction> kl=<mean nats per token> max_abs=<max |dlogit|> tokens=<n>
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "tools"))
import st  # noqa: E402


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def main(ref_path, test_path):
    ref, test = st.read(ref_path), st.read(test_path)
    agree, kl, n, worst = 0, 0.0, 0, 0.0
    for k, a in ref.items():
        b = test[k]
        la, lb = log_softmax(a.astype(np.float64)), log_softmax(b.astype(np.float64))
        agree += int((la.argmax(-1) == lb.argmax(-1)).sum())
        kl += float((np.exp(la) * (la - lb)).sum())
        n += a.shape[0]
        worst = max(worst, float(np.abs(a - b).max()))
    print(f"top1={agree / n:.4f} kl={kl / n:.5f} max_abs={worst:.4f} tokens={n}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
