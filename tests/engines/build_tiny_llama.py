"""Build a tiny random-weight Llama model (about 1.4 MB) that vLLM can serve, into OUTDIR.

Why: the integration tests need a real vLLM server, and this machine has no model hub, so no weights can be
downloaded. A randomly initialised Llama with a locally trained tokenizer is enough: the tests check the
server's protocol (n, seeds, usage, finish reasons, metrics), never the quality of the text, which is gibberish.

The shape is the smallest vLLM's CPU backend accepts: head dim hidden_size / num_attention_heads must be 64
(16 is refused). Weights come from a fixed seed and the tokenizer from a fixed corpus, so a rebuild gives the
same model. Run with the vLLM venv's python (it has torch, transformers and tokenizers):

    .engines/vllm-venv/bin/python tests/engines/build_tiny_llama.py .engines/tiny-llama
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

VOCAB_SIZE = 512
MAX_POSITIONS = 512
BOS, EOS, PAD = "<s>", "</s>", "<pad>"
# Plain-text role markers: the chat template needs no extra special tokens, and the BPE learns them.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def corpus(lines: int = 4000, seed: int = 0) -> Iterator[str]:
    """Math-question-like English with digits, so the BPE merges resemble what the gateway's tests send."""
    rng = random.Random(seed)
    names = ["Ann", "Bob", "Carla", "Dev", "Emma", "Farid", "Grace", "Hugo"]
    things = ["apples", "books", "coins", "marbles", "pencils", "stickers", "tickets"]
    ops = [("plus", lambda a, b: a + b), ("minus", lambda a, b: a - b), ("times", lambda a, b: a * b)]
    for _ in range(lines):
        a, b = rng.randint(0, 999), rng.randint(1, 99)
        word, op = rng.choice(ops)
        name, thing = rng.choice(names), rng.choice(things)
        yield rng.choice(
            [
                f"What is {a} {word} {b}? The answer is {op(a, b)}.",
                f"{name} has {a} {thing} and buys {b} more. How many {thing} does {name} have now? {a + b}",
                f"<|user|>\nSolve {a} {word} {b}.\n<|assistant|>\nThe result is \\boxed{{{op(a, b)}}}.",
            ]
        )


def build_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    # Completions (not chat) prompts get a BOS, as Llama tokenizers do.
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, tok.token_to_id(BOS))])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        model_max_length=MAX_POSITIONS,
    )


def build(outdir: Path) -> None:
    tokenizer = build_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(outdir)
    tokenizer.save_pretrained(outdir)
    GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
    ).save_pretrained(outdir)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTDIR")
    out = Path(sys.argv[1])
    hf_logging.disable_progress_bar()
    build(out)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"tiny-llama: {size / 1e6:.1f} MB in {out}")
