#!/bin/bash
# Seeds fuzz/corpus/<target>/ from the test fixtures. usage: bash fuzz/seed.sh (from the repository root)
set -euo pipefail
f=tests/data/fixtures
c=fuzz/corpus
mkdir -p $c/config $c/safetensors $c/tokenizer $c/jsonl
for d in bert-l2-h32 bert-3labels electra-tiny xlmr-tiny tinybert-h128 st-mean; do
    cp $f/$d/config.json $c/config/$d.json
done
# The safetensors target loads with bert-l2-h32's config: its weights in f32, f16 and bf16.
for d in bert-l2-h32 bert-f16 bert-bf16; do cp $f/$d/model.safetensors $c/safetensors/$d; done
# tokenizer: max length byte, query, 0xff, document, 0xff, tokenizer.json (crossenc::fuzz::tokenizer_input).
for d in bert-l2-h32 st-mean; do
    { printf '\x10what is the capital of france\xffparis is the capital of france. it is large.\xff'
      cat $f/$d/tokenizer.json; } > $c/tokenizer/$d
done
printf '{"query": "a", "document": "b"}\r\n\n{"query": "c", "document": "d d"}\n' > $c/jsonl/score
printf '\xef\xbb\xbf{"text": "x", "id": 3, "score": 0.5}\n{"text": "y\\u00e9", "meta": {"a": [1, 2]}}\n' > $c/jsonl/rerank
printf '{"text": ""}\n{"text": "\\ud83e\\udd80"}\n' > $c/jsonl/embed
