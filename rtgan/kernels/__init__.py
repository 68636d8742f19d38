"""Custom kernels, each beside its plain PyTorch reference (`*_reference`) and tested against it.

- `spade_norm`: fused SPADE normalization + denormalization + leaky ReLU (batch/instance stats, AdaIN).
- `asap_mlp`: fused ASAPNet pixelwise MLP (position code in registers, one-hot layer as a gather).
- `sparse_spade`: exact boundary-sparse SPADE modulation (per-class tables + convolutions only near
  label boundaries); `sparsify(model)` swaps it into a SPADE generator.
- `row_modulate`: its fused consumer, `x * table[rows, :C] + table[rows, C:]` in one pass (Triton).
- `plugins`, `trt_plugins`: the kernels as TensorRT plugins (rules, launch geometry, AOT PTX).

`ops` registers them as PyTorch custom ops (`torch.ops.rtgan.*`): Triton on CUDA, references elsewhere.
Triton kernels run on CUDA tensors, or on CPU tensors under `TRITON_INTERPRET=1` (the tests);
`rtgan.kernels.aot` compiles them to cubin for each GPU architecture with no GPU present.
"""
