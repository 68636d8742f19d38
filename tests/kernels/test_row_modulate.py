"""Table-row modulation kernel (sparse SPADE's fused consumer) vs its PyTorch reference, and the op."""

import pytest
import torch
import torch.nn.functional as F

import rtgan.kernels.ops  # noqa: F401
from rtgan.kernels.row_modulate import row_modulate, row_modulate_reference

pytest.importorskip("triton")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (1, 4, 33, 65), (2, 2, 40, 41)])  # odd, > BLOCK
@pytest.mark.parametrize("slope", [None, 0.2])
def test_kernel_matches_reference(shape, dtype, slope):
    g = torch.Generator().manual_seed(0)
    n, c, h, w = shape
    x = torch.randn(shape, generator=g).to(dtype)
    table = torch.randn(9, 2 * c, generator=g)
    rows = torch.randint(0, 9, (n, h, w), generator=g)
    got = row_modulate(x, table, rows, slope)
    assert got.dtype == dtype and got.shape == x.shape
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(got, row_modulate_reference(x, table, rows, slope), **tol)


def test_reference_is_the_per_pixel_definition():
    g = torch.Generator().manual_seed(1)
    x, table = torch.randn(2, 3, 4, 5, generator=g), torch.randn(6, 6, generator=g)
    rows = torch.randint(0, 6, (2, 4, 5), generator=g)
    want = torch.empty_like(x)
    for n in range(2):
        for yy in range(4):
            for xx in range(5):
                r = table[rows[n, yy, xx]]
                want[n, :, yy, xx] = x[n, :, yy, xx] * r[:3] + r[3:]
    torch.testing.assert_close(row_modulate_reference(x, table, rows), want)
    torch.testing.assert_close(row_modulate_reference(x, table, rows, 0.2), F.leaky_relu(want, 0.2))


def test_op_passes_opcheck():
    args = (torch.randn(1, 2, 3, 4), torch.randn(5, 4), torch.randint(0, 5, (1, 3, 4)), 0.2)
    torch.library.opcheck(torch.ops.rtgan.row_modulate, args)
    torch.testing.assert_close(torch.ops.rtgan.row_modulate(*args), row_modulate_reference(*args))
