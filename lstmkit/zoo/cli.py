"""``lstmkit generate``: train a character language model (or load one) and print a sample.

Light to import: no torch until the command runs.
"""

from __future__ import annotations

import json
import os


def add_generate_command(commands) -> None:
    """Register ``lstmkit generate`` on the top-level sub-command parsers."""
    parser = commands.add_parser(
        "generate", help="train a character-level LSTM language model and generate text",
        description="Train a character-level LSTM on a text file (default: the Python documentation's topic "
        "pages, pydoc_data.topics, which every Python has), report the validation bits per character, and "
        "print text sampled from it at a temperature. With --load, sample from a saved model instead.")
    parser.add_argument("--text", metavar="FILE", help="train on this UTF-8 text file (default: pydoc_data.topics)")
    parser.add_argument("--minutes", type=float, default=2.0, help="training time budget (default 2)")
    parser.add_argument("--epochs", type=int, default=100, help="at most this many passes over the text")
    parser.add_argument("--units", type=int, default=256, help="LSTM units (default 256)")
    parser.add_argument("--layers", type=int, default=1, help="stacked LSTM layers (default 1)")
    parser.add_argument("--steps", type=int, default=100, help="characters per training window (default 100)")
    parser.add_argument("--length", type=int, default=400, help="characters to generate (default 400)")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    parser.add_argument("--prime", default=None, help="text to start generating from (default: a new line)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", metavar="DIR", help="save the trained model and its vocabulary here")
    parser.add_argument("--load", metavar="DIR", help="skip training: sample from a model saved with --save")
    parser.set_defaults(handler=_run)


def _run(args) -> int:
    import logging
    import sys

    import numpy as np
    import torch

    from lstmkit.zoo.charlm import sample, train_char_lm

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    log = logging.getLogger("lstmkit.zoo")
    if args.load:
        from lstmkit.data import CharVocabulary
        from lstmkit.models import load_model

        vocab_file = os.path.join(args.load, "vocabulary.json")
        if not os.path.isfile(vocab_file):
            print(f"lstmkit generate: {args.load!r} has no vocabulary.json; save the model with "
                  "`lstmkit generate --save DIR`.", file=sys.stderr)
            return 2
        model = load_model(args.load)
        with open(vocab_file, encoding="utf-8") as f:
            vocab = CharVocabulary.from_config(json.load(f))
    else:
        text = None
        if args.text:
            try:
                with open(args.text, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as err:
                print(f"lstmkit generate: cannot read --text {args.text!r}: {err}", file=sys.stderr)
                return 2
        try:
            result = train_char_lm(text, steps=args.steps, units=args.units, layers=args.layers,
                                   epochs=args.epochs, minutes=args.minutes, seed=args.seed)
        except (TypeError, ValueError) as err:
            print(f"lstmkit generate: {err}", file=sys.stderr)
            return 2
        model, vocab = result.model, result.vocab
        source = args.text or "pydoc_data.topics"
        print(f"trained on {source}: {len(vocab)} distinct characters, {result.epochs} epoch(s) in "
              f"{result.seconds:.0f} s; validation {result.val_bpc:.3f} bits per character")
        if args.save:
            model.save(args.save)
            with open(os.path.join(args.save, "vocabulary.json"), "w", encoding="utf-8") as f:
                json.dump(vocab.get_config(), f)
            log.info("saved the model and its vocabulary to %s", args.save)
    try:
        text = sample(model, vocab, args.length, temperature=args.temperature, prime=args.prime,
                      rng=np.random.default_rng(args.seed))
    except (TypeError, ValueError) as err:
        print(f"lstmkit generate: {err}", file=sys.stderr)
        return 2
    print(f"--- sample (temperature {args.temperature}) ---")
    print((args.prime or "") + text)
    return 0
