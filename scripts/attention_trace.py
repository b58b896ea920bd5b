"""Trace one row of a Transformer's cross-attention by hand: scores -> softmax -> weighted sum.

    python scripts/attention_trace.py "I love machine learning" [--checkpoint checkpoints/default] [--layer -1]

For the first target piece (the first decoding step, the same for greedy and beam search), in
decoder layer ``--layer``, each head h computes (Vaswani et al. 2017, eq. 1)

    score_h(s) = q_h . k_h(s) / sqrt(d_k),   a_h(s) = softmax_s score_h(s),   c_h = sum_s a_h(s) v_h(s)

The script recomputes them from the layer's own projections (``MultiHeadAttention.query`` and
``key_value``), checks its softmax against the weights the model returned, and prints the heads'
average: the first row of ``mt translate ... --show-attention --attention-level piece``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import torch

from mt.alignment import display_piece
from mt.translate import Translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sentence")
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/default"))
    parser.add_argument("--layer", type=int, default=-1)
    args = parser.parse_args()
    translator = Translator.from_checkpoint(args.checkpoint, device="cpu")
    attention = translator.model.decoder_layers[args.layer].cross_attention
    calls = []
    hook = attention.register_forward_hook(lambda module, inputs, output: calls.append((inputs, output)))
    greedy = replace(translator.config.decode, beam_size=1)
    (result,) = translator.translate([args.sentence], greedy, return_attention=True)
    hook.remove()
    (query, keys, values, *_), (_, weights) = calls[0]  # the first step: query (1, 1, D), keys/values (1, H, S, D/H)
    with torch.inference_mode():
        q = attention._split_heads(attention.query(query))[0, :, 0]  # (H, D/H)
    keys, values = keys[0], values[0]  # (H, S, D/H)
    sources = [display_piece(piece) for piece in result.src_pieces] + ["</s>"]
    print(f"{args.sentence} -> {result.text}; first target piece {display_piece(result.tgt_pieces[0])!r}, "
          f"decoder layer {args.layer % len(translator.model.decoder_layers)}, d_k = {attention.head_dim}")
    print(" " * 18 + "".join(f"{piece:>10}" for piece in sources))
    heads = []
    for head in range(attention.heads):
        scores = keys[head] @ q[head] / math.sqrt(attention.head_dim)  # (S,)
        softmax = scores.softmax(dim=-1)
        assert torch.allclose(softmax, weights[0, head, 0].float(), atol=1e-5), "the recomputation differs from the model"
        context = softmax @ values[head]  # (D/H,)
        print(f"head {head}  q.k/sqrt(d)" + "".join(f"{score:10.2f}" for score in scores.tolist()))
        print(f"        softmax % " + "".join(f"{100 * weight:10.1f}" for weight in softmax.tolist()))
        print(f"        c = sum a*v   [{', '.join(f'{x:.3f}' for x in context[:4].tolist())}, ...] ({attention.head_dim} numbers)")
        heads.append(softmax)
    print(f"heads averaged %  " + "".join(f"{100 * weight:10.1f}" for weight in torch.stack(heads).mean(0).tolist()))


if __name__ == "__main__":
    main()
