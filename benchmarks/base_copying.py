"""Does a plain base model copy an e-mail address after a quotation mark? A few-shot probe.

The idea behind `token_init: quote` and the copying issue was that the base copies words inside
quotation marks every day, and `<escape>` plays a quotation mark's role. This probe asks the base
itself: three worked examples (`Email bob.smith@x.com now. -> "bob.smith@x.com"`), then an address
to copy after `"`, greedy. The addresses are split by their first word: one token with its leading
space and more without it (`▁grandma` but `grand` `ma`), or one token either way. No fine-tuning,
no FunctionGemma format: only the base's own copying.

    python benchmarks/base_copying.py                 # the embedded Gemma 3 270M
    python benchmarks/base_copying.py --model PATH    # any causal LM directory
"""

from __future__ import annotations

import argparse
import random

from pytest_toolsel.models.embedded import EMBEDDED_ALIAS
from pytest_toolsel.models.loading import resolve

SHOTS = (
    'Email bob.smith@x.com now. -> "bob.smith@x.com"\n'
    'Write to sales@acme.org please. -> "sales@acme.org"\n'
    'Mail the.jones@home.net today. -> "the.jones@home.net"\n'
)
FIRST_WORDS = (
    "grandma auntie reservations enquiries admissions volunteers tutor scholarships alumni concierge orchestra "
    "choir parish kindergarten daycare pharmacy babysitter housekeeper plumber dentist accountant solicitor "
    "treasurer caretaker reception refunds fundraising tenancy recruitment internships accounts sales billing "
    "support orders info office team press admin hello contact jobs events travel news"
).split()
SECOND_WORDS = "ruth mills office team desk hub jones lee park smith".split()
DOMAINS = ("aol.com", "gmail.com", "mail.org", "web.de")


def cut_without_space(tokenizer, word: str) -> bool:
    return len(tokenizer.tokenize(word)) > len(tokenizer.tokenize(" " + word))


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=EMBEDDED_ALIAS)
    args = parser.parse_args()
    source = resolve(args.model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    rng = random.Random(0)
    copied = {True: [0, 0], False: [0, 0]}
    for word in FIRST_WORDS:
        address = f"{word}.{rng.choice(SECOND_WORDS)}@{rng.choice(DOMAINS)}"
        ids = tokenizer(f'{SHOTS}Send a note to {address} later. -> "', return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=16, do_sample=False)
        answer = tokenizer.decode(out[0, ids.shape[1]:]).split('"')[0]
        cut = cut_without_space(tokenizer, word)
        copied[cut][0] += answer == address
        copied[cut][1] += 1
        if answer != address:
            print(f"{'cut ' if cut else 'one '} {address} -> {answer}")
    for cut, (right, total) in copied.items():
        kind = "first word cut differently without its space" if cut else "first word one token either way"
        print(f"{kind}: {right}/{total} copied exactly")


if __name__ == "__main__":
    main()
