import os

import pytest
import torch

# Triton kernels run on CPU tensors through the interpreter where there is no GPU; the variable
# must be set before anything imports triton, hence here, at the root of the test tree
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
