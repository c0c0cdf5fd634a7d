#!/usr/bin/env python3
"""anchors.py — what a user would pick instead, measured on the same GPU in the same call (ANCHORS.md).

  --attn      PyTorch scaled_dot_product_attention alone, forward + backward, B16 H12 T512 D64 causal bf16,
              per backend (cuDNN, FlashAttention-2, memory-efficient, math).
  --model M   GPT-2 124M training steps at B16 T512, bf16 autocast, fused AdamW, random tokens:
              M = eager | sdpa (Hugging Face transformers GPT2LMHeadModel with that attn_implementation) |
              compile (sdpa + torch.compile). Tokens/s, step ms (median), peak allocated memory, GPU energy
              per step (NVML total-energy counter, when pynvml is importable).
  --infer     GPT-2 124M inference, eval mode, bf16 weights, sdpa attention, random weights: prefill of --seq
              tokens at batch 1 (median of 20, CUDA events), and cached decode (past_key_values, one token a call,
              greedy) at batch 1 and at --batch: a --seq/2-token prompt, then --gen-tokens tokens, median ms a token
              over all but the first --warmup (attnbench bench --infer decodes positions 256..383 with --seq 512
              --gen-tokens 128).

Timing of --attn: (1) as tests/gpu/test_cuda_bench.c: host clock around batches of 10 calls with a device
synchronisation before and after, median of 15 batches, inputs rotating over 3 copies; (2) the GPU time of
the kernels alone from torch.profiler, since PyTorch's host-side overhead (autograd, dispatch) exceeds the
kernel time at this shape and (1) then measures the host.
Prints one line per measurement, prefixed "anchor".
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

B, H, T, D = 16, 12, 512, 64


def median_batches(fn, reps=10, batches=15, warmup=3):
    for i in range(warmup):
        fn(i)
    torch.cuda.synchronize()
    times = []
    for _ in range(batches):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for r in range(reps):
            fn(r)
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3 / reps)
    return statistics.median(times)


def kernel_ms(fn, iters=20):
    """Sum of the device time of every kernel / memset / copy fn launches, per call (torch.profiler):
    the GPU time without the host's launch gaps, which dominate PyTorch's autograd at this size."""
    from torch.profiler import ProfilerActivity, profile

    fn(0)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(iters):
            fn(i)
        torch.cuda.synchronize()
    total_us = sum(e.self_device_time_total for e in prof.key_averages())
    return total_us / 1e3 / iters


def attn_anchors(b, t):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    sets = []
    for _ in range(3):
        q, k, v = (torch.randn(b, H, t, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        do = torch.randn(b, H, t, D, device="cuda", dtype=torch.bfloat16)
        sets.append((q, k, v, do))
    backends = [("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash2", SDPBackend.FLASH_ATTENTION),
                ("mem_efficient", SDPBackend.EFFICIENT_ATTENTION), ("math", SDPBackend.MATH)]
    for name, be in backends:
        def fwd_bwd(i):
            q, k, v, do = sets[i % 3]
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            o.backward(do)

        def fwd(i):
            q, k, v, _ = sets[i % 3]
            with torch.no_grad():
                F.scaled_dot_product_attention(q, k, v, is_causal=True)

        try:
            with sdpa_kernel([be]):
                f = median_batches(fwd)
                fb = median_batches(fwd_bwd)
                kf, kfb = kernel_ms(fwd), kernel_ms(fwd_bwd)
            print(f"anchor attn {name:14s} B={b} H={H} T={t} D={D} causal: forward {f:.3f} ms, forward+backward {fb:.3f} ms "
                  f"(wall per call); GPU kernel time forward {kf:.3f} ms, forward+backward {kfb:.3f} ms", flush=True)
        except RuntimeError as e:
            print(f"anchor attn {name:14s} unavailable: {str(e).splitlines()[0]}", flush=True)


def event_ms(fn):
    """Runs fn() between two CUDA events and returns (its result, the device time between them in ms)."""
    s0, s1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s0.record()
    r = fn()
    s1.record()
    s1.synchronize()
    return r, s0.elapsed_time(s1)


def gpt2_block_model(impl):
    """Hugging Face GPT2LMHeadModel (GPT-2 124M) with the given attention implementation."""
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(n_positions=1024, n_embd=768, n_layer=12, n_head=12, vocab_size=50257,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    cfg._attn_implementation = impl  # the installed transformers takes it from the config, not __init__
    model = GPT2LMHeadModel(cfg)
    assert model.config._attn_implementation == impl, model.config._attn_implementation
    return model


def energy_mj():
    try:
        import pynvml
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        return pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
    except Exception:
        return None


def model_anchor(mode, steps, warmup, b, t):
    impl = "eager" if mode == "eager" else "sdpa"
    model = gpt2_block_model(impl).cuda()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=True)
    fwd = torch.compile(model) if mode == "compile" else model
    x = torch.randint(0, 50257, (b, t), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = fwd(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    e0 = energy_mj()
    t_all = time.perf_counter()
    for _ in range(steps):
        times.append(event_ms(step)[1])
    t_all = time.perf_counter() - t_all
    e1 = energy_mj()
    ms = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 1e9
    energy = f"{(e1 - e0) / 1e3 / steps:.1f} J/step over {t_all:.1f} s" if e0 is not None and e1 is not None else "energy n/a"
    print(f"anchor model hf_{mode:8s} B={b} T={t}: {b * t / ms * 1e3:,.0f} tokens/s, step {ms:.1f} ms (median of {steps}), "
          f"peak allocated {peak:.2f} GB, {energy}", flush=True)
    del model, opt, fwd
    torch.cuda.empty_cache()


def infer_anchor(b, t, gen, warmup=5):
    model = gpt2_block_model("sdpa").cuda().to(torch.bfloat16).eval()
    with torch.no_grad():
        x = torch.randint(0, 50257, (1, t), device="cuda")
        times = [event_ms(lambda: model(input_ids=x, use_cache=True))[1] for _ in range(20 + warmup)][warmup:]
        print(f"anchor infer hf_sdpa prefill B=1 T={t}: {statistics.median(times):.2f} ms (median of 20)", flush=True)
        for bb in sorted({1, b}):
            prompt = torch.randint(0, 50257, (bb, t // 2), device="cuda")
            out = model(input_ids=prompt, use_cache=True)
            per = []
            for _ in range(gen):
                past, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
                out, ms = event_ms(lambda: model(input_ids=tok, past_key_values=past, use_cache=True))
                per.append(ms)
            first = t // 2 + warmup
            print(f"anchor infer hf_sdpa decode B={bb} positions {first}..{t // 2 + gen - 1}: "
                  f"{statistics.median(per[warmup:]):.3f} ms a token (median of {gen - warmup})", flush=True)
    del model
    torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attn", action="store_true", help="attention-only anchors")
    ap.add_argument("--model", action="append", default=[], choices=["eager", "sdpa", "compile"],
                    help="training-step anchor (repeatable)")
    ap.add_argument("--infer", action="store_true", help="inference anchors (prefill, cached decode)")
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=B)
    ap.add_argument("--seq", type=int, default=T)
    a = ap.parse_args()
    print(f"anchor device {torch.cuda.get_device_name()} torch {torch.__version__} cuda {torch.version.cuda} "
          f"cudnn {torch.backends.cudnn.version()}", flush=True)
    if a.attn:
        attn_anchors(a.batch, a.seq)
    for m in a.model:
        model_anchor(m, a.steps, a.warmup, a.batch, a.seq)
    if a.infer:
        if a.gen_tokens <= a.warmup:
            ap.error(f"--gen-tokens must exceed --warmup ({a.warmup}): the first decoded tokens are not timed")
        infer_anchor(a.batch, a.seq, a.gen_tokens, a.warmup)


if __name__ == "__main__":
    main()
