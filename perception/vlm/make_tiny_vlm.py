"""Writes a tiny random-weight vision-language model for tests: a llama-architecture language
model (2 layers, 64 wide) with SmolLM2's real tokenizer copied from its GGUF, and a matching
LLaVA-style projector (a 2-layer ViT over 8x8 patches of a 32x32 image, MLP projector into the
LM's 64-wide embeddings) in the `mmproj` layout llama.cpp's multimodal loader (tools/mtmd/clip.cpp)
reads: `clip.projector_type = mlp`, `v.patch_embd`, `v.position_embd`, `v.blk.N.*`, `mm.0/2.*`.

No VLM weights ship in any registry package, so this exercises the real code path (load both
files through llama-cpp-2's `mtmd`, encode a real photo, generate tokens) without pretending the
output means anything: the weights are seeded random numbers.

usage: make_tiny_vlm.py --tokenizer-from SmolLM2.gguf -o DIR   (writes DIR/tiny-vlm.gguf and
DIR/tiny-vlm.mmproj.gguf)
"""

import argparse
import os

import gguf
import numpy as np

N_EMBD, N_FF, N_LAYER, N_HEAD = 64, 128, 2, 4
V_EMBD, V_FF, V_LAYER, V_HEAD = 32, 64, 2, 4
IMAGE, PATCH = 32, 8


def lm(path, tokenizer_from, rng):
    src = gguf.GGUFReader(tokenizer_from)
    n_vocab = len(src.fields["tokenizer.ggml.tokens"].data)
    w = gguf.GGUFWriter(path + ".part", arch="llama")
    w.add_name("arbor-tiny-vlm (random weights, tests only)")
    w.add_context_length(2048)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    for f in src.fields.values():
        if f.name.startswith("tokenizer."):
            vt = f.types[0]
            sub = f.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
            w.add_key_value(f.name, f.contents(), vt, sub_type=sub)

    def t(name, *shape, scale=0.02):
        w.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    t("token_embd.weight", n_vocab, N_EMBD)
    for i in range(N_LAYER):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, np.float32))
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            t(f"blk.{i}.{n}.weight", N_EMBD, N_EMBD)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, np.float32))
        t(f"blk.{i}.ffn_gate.weight", N_FF, N_EMBD)
        t(f"blk.{i}.ffn_up.weight", N_FF, N_EMBD)
        t(f"blk.{i}.ffn_down.weight", N_EMBD, N_FF)
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, np.float32))
    t("output.weight", n_vocab, N_EMBD, scale=0.5)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".part", path)


def mmproj(path, rng):
    w = gguf.GGUFWriter(path + ".part", arch="clip")
    w.add_name("arbor-tiny-vlm projector (random weights, tests only)")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_string("clip.projector_type", "mlp")
    w.add_bool("clip.use_gelu", True)
    w.add_uint32("clip.vision.image_size", IMAGE)
    w.add_uint32("clip.vision.patch_size", PATCH)
    w.add_uint32("clip.vision.embedding_length", V_EMBD)
    w.add_uint32("clip.vision.feed_forward_length", V_FF)
    w.add_uint32("clip.vision.block_count", V_LAYER)
    w.add_uint32("clip.vision.projection_dim", N_EMBD)
    w.add_uint32("clip.vision.attention.head_count", V_HEAD)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    w.add_array("clip.vision.image_mean", [0.48145466, 0.4578275, 0.40821073])
    w.add_array("clip.vision.image_std", [0.26862954, 0.26130258, 0.27577711])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)

    def t(name, *shape, scale=0.05, dtype=np.float32):
        w.add_tensor(name, (rng.standard_normal(shape) * scale).astype(dtype))

    n_pos = (IMAGE // PATCH) ** 2
    # Conv kernel [out, in, kh, kw]; llama.cpp's LLaVA files keep it in f16.
    t("v.patch_embd.weight", V_EMBD, 3, PATCH, PATCH, dtype=np.float16)
    t("v.position_embd.weight", n_pos, V_EMBD)
    w.add_tensor("v.pre_ln.weight", np.ones(V_EMBD, np.float32))
    w.add_tensor("v.pre_ln.bias", np.zeros(V_EMBD, np.float32))
    for i in range(V_LAYER):
        for n in ("attn_q", "attn_k", "attn_v", "attn_out"):
            t(f"v.blk.{i}.{n}.weight", V_EMBD, V_EMBD)
            t(f"v.blk.{i}.{n}.bias", V_EMBD)
        for n in ("ln1", "ln2"):
            w.add_tensor(f"v.blk.{i}.{n}.weight", np.ones(V_EMBD, np.float32))
            w.add_tensor(f"v.blk.{i}.{n}.bias", np.zeros(V_EMBD, np.float32))
        t(f"v.blk.{i}.ffn_up.weight", V_FF, V_EMBD)
        t(f"v.blk.{i}.ffn_up.bias", V_FF)
        t(f"v.blk.{i}.ffn_down.weight", V_EMBD, V_FF)
        t(f"v.blk.{i}.ffn_down.bias", V_EMBD)
    t("mm.0.weight", N_EMBD, V_EMBD)
    t("mm.0.bias", N_EMBD)
    t("mm.2.weight", N_EMBD, N_EMBD)
    t("mm.2.bias", N_EMBD)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".part", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer-from", required=True, help="a GGUF whose tokenizer to copy (SmolLM2)")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    lm(os.path.join(a.out, "tiny-vlm.gguf"), a.tokenizer_from, rng)
    mmproj(os.path.join(a.out, "tiny-vlm.mmproj.gguf"), rng)
    print(os.path.join(a.out, "tiny-vlm.gguf"), os.path.join(a.out, "tiny-vlm.mmproj.gguf"))


if __name__ == "__main__":
    main()
