"""Fine-tune arbor's on-device planner on arbor's own dataset (LoRA), and ship it as GGUF.

Loads the base model from its GGUF file (transformers dequantizes it), trains LoRA adapters on
`train.jsonl` (chat form; the loss is on the assistant turn only), validates on `val.jsonl`,
merges, saves a Hugging Face checkpoint, converts it to GGUF (Q8_0 by default: re-quantizing to
Q4 erased the fine-tune in measurements) with llama.cpp's own converter, and writes a model
card beside it (`planner.Q8_0.arbor.json`, which arbor reads: `prompt_style` tells the planner
to use the compact system prompt when the data was built with `--prompt-style compact`).
Uses a GPU when there is one, bf16 autocast on CPU otherwise.

usage: python finetune.py --data <dataset dir> --base <model.gguf> --converter <llama.cpp dir> -o <out dir>
       [--epochs 3] [--lr 1e-3] [--batch 8] [--rank 16] [--max-steps N] [--seed 1]
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def encode(tok, messages, max_len):
    """Token ids of the whole chat and labels that count only the assistant's answer."""
    prompt = tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    full = prompt + messages[2]["content"] + tok.eos_token
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    ids = tok(full, add_special_tokens=False)["input_ids"][:max_len]
    labels = ([-100] * len(p_ids) + ids[len(p_ids):])[: len(ids)]
    return ids, labels


def answer_loss(model, ids, mask, labels):
    """Cross-entropy on the answer tokens only, computing logits only there: the prompt is most
    of every sequence, and full logits over a 49k vocabulary would dominate memory and time."""
    inner = model.get_base_model()
    hidden = inner.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    target = labels[:, 1:]
    keep = target != -100
    logits = inner.lm_head(hidden[keep])
    return F.cross_entropy(logits.float(), target[keep])


def batches(items, size, pad_id, shuffle, rng, max_tokens=2400):
    """Batches of similar lengths (little padding: answers range from 10 to 500+ tokens), at most
    `size` lines and `max_tokens` padded tokens each (memory grows with tokens: 8 lines of 700
    tokens took 24 GB in fp32), in a seeded random order of batches."""
    order = sorted(range(len(items)), key=lambda j: (len(items[j][0]), j))
    groups, cur = [], []
    for j in order:
        width = len(items[j][0])
        if cur and (len(cur) == size or width * (len(cur) + 1) > max_tokens):
            groups.append(cur)
            cur = []
        cur.append(j)
    if cur:
        groups.append(cur)
    if shuffle:
        rng.shuffle(groups)
    for group in groups:
        chunk = [items[j] for j in group]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for k, (a, b) in enumerate(chunk):
            ids[k, : len(a)] = torch.tensor(a)
            labels[k, : len(b)] = torch.tensor(b)
            mask[k, : len(a)] = 1
        yield ids, labels, mask


def restore_vocab(converted, base, converter):
    """Give the converted GGUF the base GGUF's tokenizer. transformers turns SmolLM2's GGUF
    tokenizer (GPT-2 style BPE, pre-tokenizer "smollm") into a Llama-style tokenizer.json, which
    llama.cpp's converter then writes as a "llama" vocabulary without merges: llama.cpp refuses
    to load that. Training changed no token, so the base file's tokenizer.* keys are the truth."""
    sys.path.insert(0, os.path.join(converter, "gguf-py"))
    import gguf  # the converter's own copy, matching the files it writes

    out = gguf.GGUFReader(converted)
    src = gguf.GGUFReader(base)
    arch = bytes(out.fields["general.architecture"].parts[-1]).decode()
    tmp = converted + ".part"
    w = gguf.GGUFWriter(tmp, arch=arch, endianess=out.endianess)

    def copy(field):
        vt = field.types[0]
        sub = field.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(field.name, field.contents(), vt, sub_type=sub)

    for f in out.fields.values():
        if f.name == "general.architecture" or f.name.startswith("GGUF.") or f.name.startswith("tokenizer."):
            continue
        copy(f)
    for f in src.fields.values():
        if f.name.startswith("tokenizer."):
            copy(f)
    for t in out.tensors:
        w.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for t in out.tensors:
        w.write_tensor_data(t.data)  # same byte order as written (little-endian)
    w.close()
    del out
    os.replace(tmp, converted)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--base", required=True, help="GGUF file of the base model")
    ap.add_argument("--converter", required=True, help="llama.cpp source dir with convert_hf_to_gguf.py")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--batch-tokens", type=int, default=2400, help="most padded tokens per batch (memory)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    ap.add_argument("--max-len", type=int, default=1536, help="longest sequence in tokens (longer ones are cut)")
    ap.add_argument("--outtype", default="q8_0")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast on CPU too (only where the CPU has native bf16)")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    train_rows = load_jsonl(os.path.join(a.data, "train.jsonl"))
    val_rows = load_jsonl(os.path.join(a.data, "val.jsonl"))
    if not train_rows:
        sys.exit(f"{a.data}/train.jsonl: no training lines")
    gguf_dir, gguf_file = os.path.split(os.path.abspath(a.base))
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_dir, gguf_file=gguf_file, torch_dtype=torch.float32, attn_implementation="sdpa"
    )
    load_s = time.time() - t0
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    systems = {r["messages"][0]["content"] for r in train_rows if r["messages"][0]["role"] == "system"}
    prompt_style = "compact" if len(systems) == 1 and len(next(iter(systems))) < 200 else "full"
    # How the dataset was built (arbor dataset build writes it): with retrieved worked examples
    # in every prompt, the model must plan with them too, from the same bank (train.jsonl).
    spec_path = os.path.join(a.data, "dataset.json")
    spec = json.load(open(spec_path)) if os.path.exists(spec_path) else {}
    prompt_style = spec.get("prompt_style", prompt_style)
    examples = int(spec.get("examples") or 0)
    train = [encode(tok, r["messages"], a.max_len) for r in train_rows]
    val = [encode(tok, r["messages"], a.max_len) for r in val_rows]
    cut = sum(1 for ids, _ in train + val if len(ids) >= a.max_len)
    if cut:
        print(f"warning: {cut} lines reach --max-len {a.max_len} tokens and were cut (their answers lose their end)", flush=True)
    cfg = LoraConfig(
        r=a.rank,
        lora_alpha=2 * a.rank,
        lora_dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, cfg).to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=a.lr)
    steps_per_epoch = sum(1 for _ in batches(train, a.batch, tok.pad_token_id, False, random.Random(0), a.batch_tokens))
    total = int(steps_per_epoch * a.epochs)
    if a.max_steps:
        total = min(total, a.max_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10) * max(0.0, 1 - s / max(1, total)))
    # bf16 autocast on a GPU; fp32 on CPUs without native bf16 (measured on these 2-core AVX2
    # machines: fp32 matmul 97 GFLOP/s, bf16 1.2 GFLOP/s, emulated).
    use_bf16 = device == "cuda" or a.bf16
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=use_bf16)

    def val_loss():
        if not val:
            return None
        model.eval()
        tot, n = 0.0, 0
        with torch.no_grad(), autocast:
            for ids, labels, mask in batches(val, a.batch, tok.pad_token_id, False, rng, a.batch_tokens):
                loss = answer_loss(model, ids.to(device), mask.to(device), labels.to(device))
                tot += loss.item() * ids.shape[0]
                n += ids.shape[0]
        model.train()
        return tot / n

    history = []
    step = 0
    t1 = time.time()
    model.train()
    while step < total:
        for ids, labels, mask in batches(train, a.batch, tok.pad_token_id, True, rng, a.batch_tokens):
            ts = time.time()
            with autocast:
                loss = answer_loss(model, ids.to(device), mask.to(device), labels.to(device))
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            history.append(loss.item())
            if step <= 3:
                print(f"step {step}: {time.time() - ts:.1f} s, {ids.shape[0]}x{ids.shape[1]} tokens", flush=True)
            if step % 10 == 0 or step == total:
                print(f"step {step}/{total} loss {sum(history[-10:]) / len(history[-10:]):.4f}", flush=True)
            if step >= total:
                break
    train_s = time.time() - t1
    vloss = val_loss()
    print(f"trained {step} steps in {train_s:.0f} s; val loss {vloss}", flush=True)

    # Merge and save as a plain checkpoint: a model loaded from GGUF keeps its quantizer
    # state, which must go before it can be saved.
    merged = model.merge_and_unload()
    merged.hf_quantizer = None
    if hasattr(merged.config, "quantization_config"):
        del merged.config.quantization_config
    hf_dir = os.path.join(a.out, "hf")
    shutil.rmtree(hf_dir, ignore_errors=True)
    merged.to("cpu").save_pretrained(hf_dir, safe_serialization=True)
    tok.save_pretrained(hf_dir)
    # A tokenizer read from GGUF saves the GGUF file itself as "tokenizer.model"; the converter
    # would take it for a SentencePiece model. SmolLM2's tokenizer is BPE: tokenizer.json is it.
    spm = os.path.join(hf_dir, "tokenizer.model")
    if os.path.exists(spm):
        with open(spm, "rb") as f:
            if f.read(4) == b"GGUF":
                os.remove(spm)
    gguf_out = os.path.join(a.out, f"planner.{a.outtype.upper()}.gguf")
    env = dict(os.environ, PYTHONPATH=os.path.join(a.converter, "gguf-py") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run(
        [sys.executable, os.path.join(a.converter, "convert_hf_to_gguf.py"), hf_dir, "--outfile", gguf_out, "--outtype", a.outtype],
        check=True,
        env=env,
    )
    restore_vocab(gguf_out, a.base, a.converter)
    examples_file = None
    if examples:
        examples_file = os.path.basename(gguf_out)[: -len(".gguf")] + ".examples.jsonl"
        shutil.copyfile(os.path.join(a.data, "train.jsonl"), os.path.join(a.out, examples_file))
    card = {
        "prompt_style": prompt_style,
        "examples": examples,
        "examples_file": examples_file,
        "base": os.path.abspath(a.base),
        "data": os.path.abspath(a.data),
        "train_lines": len(train),
        "val_lines": len(val),
        "steps": step,
        "epochs": a.epochs,
        "lr": a.lr,
        "batch": a.batch,
        "batch_tokens": a.batch_tokens,
        "lora_rank": a.rank,
        "device": device,
        "bf16": use_bf16,
        "load_s": round(load_s, 1),
        "train_s": round(train_s, 1),
        "first_loss": history[0] if history else None,
        "last_loss": sum(history[-10:]) / max(1, len(history[-10:])),
        "val_loss": vloss,
        "gguf": os.path.abspath(gguf_out),
        "outtype": a.outtype,
        "torch": torch.__version__,
        "tokens_per_line_mean": round(sum(len(i) for i, _ in train) / max(1, len(train)), 1),
    }
    with open(gguf_out[: -len(".gguf")] + ".arbor.json", "w") as f:
        json.dump(card, f, indent=2)
    with open(os.path.join(a.out, "README.md"), "w") as f:
        f.write("# arbor planner, fine-tuned\n\n")
        f.write(f"LoRA (rank {a.rank}) on `{a.base}` with {len(train)} training lines from `{a.data}`, ")
        f.write(f"{step} steps (batch {a.batch}, lr {a.lr}), merged and converted to GGUF {a.outtype.upper()}.\n")
        f.write(f"Prompt style: {prompt_style} (arbor reads it from `{os.path.basename(gguf_out)[:-5]}.arbor.json`).\n")
        if examples:
            f.write(f"Plans with {examples} worked example(s) retrieved from `{examples_file}` (its training lines), as trained.\n")
        f.write("\n")
        f.write("| | |\n|---|---|\n")
        for k, v in card.items():
            f.write(f"| {k} | {v} |\n")
    shutil.rmtree(hf_dir, ignore_errors=True)
    print(f"wrote {gguf_out} and {a.out}/README.md", flush=True)


if __name__ == "__main__":
    main()
