"""Custom kernels, each beside its plain PyTorch reference (`*_reference`) and tested against it.

- `spade_norm`: fused SPADE normalization + denormalization + leaky ReLU (batch/instance stats, AdaIN).
- `asap_mlp`: fused ASAPNet pixelwise MLP (position code in registers, one-hot layer as a gather).
- `sparse_spade`: exact boundary-sparse SPADE modulation (per-class tables + convolutions only near
  label boundaries), the CPU path in PyTorch; `sparsify(model)` swaps it into a SPADE generator.

`ops` registers them as PyTorch custom ops (`torch.ops.rtgan.*`): Triton on CUDA, references elsewhere.
Triton kernels run on CUDA tensors, or on CPU tensors under `TRITON_INTERPRET=1` (the tests);
`rtgan.kernels.aot` compiles them to cubin for each GPU architecture with no GPU present.
"""
